"""The batch path of the orchestrator (orchestrator/service.py `drive`/`run_batch`) on real
PostgreSQL: many instances per transaction, a poisoned instance failing alone, a batch whose
connection dies retried without duplicates, a row held by another transaction left to it
and stepped after; and two or three orchestrator processes sharing one app."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import ledgerflow as wf
from brokers import wire
from ledgerflow.registration import Registrar
from orchestrator import faults, inbox
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from orchestrator.service import OrchestratorService, Publisher
from persistence.errors import StoreUnavailable
from persistence.records import NewInstance, utcnow
from persistence.store import Store
from tests.fixtures import chaos_app
from workers.activity import run_activity

pytestmark = pytest.mark.integration

APP = "batches"
registrar = Registrar()


@registrar.activity
def add_one(ctx: wf.WorkflowActivityContext, value: int) -> int:
    return value + 1


@registrar.workflow
def count_up(ctx: wf.DaprWorkflowContext, n: int):
    value = 0
    for _ in range(n):
        value = yield ctx.call_activity(add_one, input=value)
    return value


class Recorder(Publisher):
    def __init__(self) -> None:
        self.calls: list[wire.ActivityRequest] = []
        self.wakes: list[str] = []

    def orchestrate(self, app_id: str, instance_ids: Any) -> None:
        self.wakes.extend(instance_ids)

    def activity(self, app_id: str, request: wire.ActivityRequest) -> None:
        self.calls.append(request)


@pytest.fixture
def pg_store(postgres_db_url: str) -> Iterator[Store]:
    store = Store(postgres_db_url)
    yield store
    store.close()


def start(store: Store, ids: list[str], n: int) -> None:
    for iid in ids:
        started = ev.ExecutionStarted(clock.naive_utc(utcnow()), "count_up", json.dumps(n))
        store.create_instance(NewInstance(iid, APP, "count_up", input=json.dumps(n)), inbox.message("start", started))


def run_to_end(service: OrchestratorService, publisher: Recorder, ids: list[str]) -> int:
    """Start, then answer every activity call in batches until none is left; returns batches."""
    batches = 0
    service.drive(ids)
    batches += 1
    while publisher.calls:
        calls, publisher.calls = publisher.calls, []
        service.drive([], [(r.instance_id, run_activity(registrar.registry, r)) for r in calls])
        batches += 1
    return batches


def history_types(store: Store, iid: str) -> list[str]:
    return [e.type for e in store.history(iid)]


def test_many_instances_step_in_one_transaction(pg_store: Store) -> None:
    publisher = Recorder()
    service = OrchestratorService(pg_store, registrar.registry, publisher, APP, batch_size=64)
    ids = [f"b-{i}" for i in range(40)]
    start(pg_store, ids, 3)
    assert run_to_end(service, publisher, ids) == 4  # one batch per round: start + 3 results
    for iid in ids:
        inst = pg_store.get_instance(iid)
        assert (inst.status, inst.output) == ("COMPLETED", "3")
        # every step of the round shares the batch's clock: one OrchestratorStarted time per round
    stamps = {tuple(e.timestamp for e in pg_store.history(iid) if e.type == "OrchestratorStarted") for iid in ids}
    assert len(stamps) == 1


def test_a_poisoned_instance_fails_alone(pg_store: Store, caplog: pytest.LogCaptureFixture) -> None:
    publisher = Recorder()
    service = OrchestratorService(pg_store, registrar.registry, publisher, APP)
    ids = [f"p-{i}" for i in range(5)]
    start(pg_store, ids, 1)
    service.drive(ids)
    # Someone else wrote p-2's next history event: its step conflicts with it.
    taken = len(pg_store.history("p-2"))
    with pg_store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO history_events (instance_id, generation, sequence, type, payload, timestamp)"
                             " VALUES ('p-2', 0, :seq, 'OrchestratorStarted', '{}', now())"), {"seq": taken})
    calls, publisher.calls = publisher.calls, []
    outcome = service.drive([], [(r.instance_id, run_activity(registrar.registry, r)) for r in calls])
    assert outcome.failed == ["p-2"]
    assert sorted(outcome.stepped) == ["p-0", "p-1", "p-3", "p-4"]
    for iid in ("p-0", "p-1", "p-3", "p-4"):
        assert pg_store.get_instance(iid).status == "COMPLETED"
    assert pg_store.get_instance("p-2").status == "RUNNING"
    # its result was not lost: it waits in the inbox for the reconcile tick
    assert [iid for iid, _ in pg_store.pending_instances(utcnow())] == ["p-2"]
    assert "batch of 5 instance(s) failed" in caplog.text


def test_a_batch_whose_connection_dies_is_retried_without_duplicates(
        pg_store: Store, postgres_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = Recorder()
    service = OrchestratorService(pg_store, registrar.registry, publisher, APP)
    ids = [f"c-{i}" for i in range(6)]
    start(pg_store, ids, 2)
    service.drive(ids)
    results = [(r.instance_id, run_activity(registrar.registry, r)) for r in publisher.calls]
    publisher.calls = []
    killer = sa.create_engine(postgres_db_url)
    killed: list[int] = []

    def terminate_batch_connection() -> None:
        if killed:
            return
        with killer.begin() as conn:
            killed.extend(conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'idle in transaction'")).scalars())

    monkeypatch.setattr(faults, "before_commit", terminate_batch_connection)
    with pytest.raises(StoreUnavailable):
        service.drive([], results)
    assert killed == [True]
    assert publisher.calls == []  # nothing published for the rolled-back batch
    service.drive([], results)  # the same messages again, as the deliver task's retry sends them
    assert len(publisher.calls) == 6
    service.drive([], results)  # and once more: a redelivery is dropped, not applied twice
    assert len(publisher.calls) == 6
    for iid in ids:
        types = history_types(pg_store, iid)
        assert types.count("TaskCompleted") == 1 and types.count("TaskScheduled") == 2
    killer.dispose()


def test_an_instance_held_elsewhere_is_left_then_stepped_after(pg_store: Store, postgres_db_url: str) -> None:
    publisher = Recorder()
    service = OrchestratorService(pg_store, registrar.registry, publisher, APP)
    ids = ["h-0", "h-1"]
    start(pg_store, ids, 1)
    holder = sa.create_engine(postgres_db_url)
    conn = holder.connect()
    tx = conn.begin()
    conn.execute(sa.text("SELECT 1 FROM instances WHERE instance_id = 'h-0' FOR NO KEY UPDATE"))
    first = service.run_batch(ids)
    assert (list(first.stepped), first.skipped) == (["h-1"], ["h-0"])
    release = threading.Timer(0.3, tx.rollback)
    release.start()
    t0 = time.monotonic()
    outcome = service.drive(["h-0"])  # skipped again, then waited for
    assert time.monotonic() - t0 >= 0.25
    assert list(outcome.stepped) == ["h-0"]
    assert history_types(pg_store, "h-0").count("OrchestratorStarted") == 1
    release.join()
    conn.close()
    holder.dispose()


def test_a_suspend_committed_while_the_batch_waited_for_the_row_is_seen(pg_store: Store) -> None:
    """A suspend commits its message and the SUSPENDED status while a step waits for the row:
    the step reads the inbox as of the time it got the lock, so it applies the suspend with
    the start instead of writing RUNNING over SUSPENDED (found by Dapr's JavaScript SDK: a
    pause right after a start read back RUNNING)."""
    publisher = Recorder()
    service = OrchestratorService(pg_store, registrar.registry, publisher, APP)
    start(pg_store, ["p-1"], 1)
    waiting = threading.Event()
    outcome: list[Any] = []

    def step() -> None:
        waiting.set()
        outcome.append(service.run_batch(["p-1"], skip_locked=False))

    stepper = threading.Thread(target=step)
    with pg_store.step("p-1") as tx:  # what WorkflowManager.suspend does, held open
        stepper.start()
        waiting.wait(5)
        time.sleep(0.3)  # the step has read its clock and waits for the row
        tx.enqueue("p-1", [inbox.unique_message(ev.ExecutionSuspended(clock.naive_utc(utcnow()), "hold"))])
        tx.update_instance(status="SUSPENDED")
    stepper.join(10)
    assert list(outcome[0].stepped) == ["p-1"]
    assert pg_store.get_instance("p-1").status == "SUSPENDED"
    assert history_types(pg_store, "p-1")[:2] == ["OrchestratorStarted", "ExecutionStarted"]
    assert "ExecutionSuspended" in history_types(pg_store, "p-1")


def test_batches_on_sqlite_too(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'lf.db'}")
    store.migrate()
    publisher = Recorder()
    service = OrchestratorService(store, registrar.registry, publisher, APP, batch_size=8)
    ids = [f"s-{i}" for i in range(20)]
    start(store, ids, 2)
    assert run_to_end(service, publisher, ids) == 3  # start + 2 rounds of results, each 3 batches of <= 8
    assert {store.get_instance(iid).output for iid in ids} == {"2"}
    store.close()


# -- several orchestrator processes for one app ---------------------------------------------------

@pytest.mark.row("scale-out")
@pytest.mark.parametrize("orchestrators", [2, 3])
def test_orchestrators_share_an_app(make_stack, faults, row, orchestrators: int) -> None:
    """N orchestrator processes over one PostgreSQL step 1,000 workflows; with three, one is
    killed with SIGKILL part-way and the other two take over its instances."""
    stack = make_stack()
    procs = [stack.start_orchestrator(f"orchestrator-{i}", concurrency=2) for i in range(orchestrators)]
    for i in range(2):
        stack.start_worker(f"worker-{i}")
    stack.start_beat()
    stack.warm_up()
    client = stack.client()
    ids = stack.schedule_many(client, "chain", ({"x": i, "n": 2} for i in range(1000)))
    killed = None
    if orchestrators == 3:
        deadline = time.monotonic() + 120
        while sum(1 for s in stack.statuses(ids).values() if s == "COMPLETED") < 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        killed = procs[0]
        faults.kill9(killed, "orchestrator-kill9")
    waited = stack.wait_terminal(ids, 300)
    report = stack.check(expected_output={iid: i * 4 for i, iid in enumerate(ids)})
    stepped_by = {p.name: p.log_text().count("step: ") for p in procs}
    assert all(n > 0 for n in stepped_by.values()), stepped_by  # every orchestrator took a share
    if killed is not None:
        faults.require("orchestrator-kill9")
    row.figure("orchestrators", orchestrators)
    row.figure("steps per orchestrator", stepped_by)
    row.figure("wall", f"{waited:.1f}s for 1000 workflows x 2 activities")
    row.figure("checker", report.summary())


def test_concurrent_batches_never_replay_consumed_messages(pg_store: Store) -> None:
    """Two threads drive one instance while four raise events at it. A batch that waited for
    the instance's row lock must read the inbox after it got the lock: read in the same
    statement, the inbox came from before the wait and the messages the other batch had just
    consumed were counted again (found by R4)."""
    publisher = Recorder()
    lock = threading.Lock()
    service = OrchestratorService(pg_store, chaos_app.wfr.registry, publisher, APP)
    state = json.dumps({"count": 0, "per_generation": 3, "until": 40})
    started = ev.ExecutionStarted(clock.naive_utc(utcnow()), "counter", state)
    pg_store.create_instance(NewInstance("t-1", APP, "counter", input=state), inbox.message("start", started))
    service.drive(["t-1"])
    stop = threading.Event()

    def raise_events(n: int) -> None:
        for _ in range(n):
            pg_store.enqueue("t-1", [inbox.unique_message(ev.EventRaised(clock.naive_utc(utcnow()), "inc", None))])
            with lock:
                publisher.wakes.append("t-1")

    def orchestrate() -> None:
        while not stop.is_set():
            with lock:
                wakes, publisher.wakes[:] = list(publisher.wakes), []
            if wakes:
                service.drive(wakes)
            else:
                time.sleep(0.001)

    drivers = [threading.Thread(target=orchestrate) for _ in range(2)]
    senders = [threading.Thread(target=raise_events, args=(10,)) for _ in range(4)]
    for t in drivers + senders:
        t.start()
    for t in senders:
        t.join()
    deadline = time.monotonic() + 30
    while pg_store.get_instance("t-1").status != "COMPLETED" and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in drivers:
        t.join()
    inst = pg_store.get_instance("t-1")
    assert (inst.status, inst.output) == ("COMPLETED", "40")
    assert inst.generation <= 40 // 3
