"""D3: a Hypothesis state machine over the real orchestrator service and store (SQLite).

The broker is a list the machine controls, so it can lose, duplicate and redeliver any
message; time is a fake clock the machine advances; the step can crash just before or just
after its commit. Operations: start, raise, suspend, resume, terminate, purge (through the
management layer the client uses), orchestrate, run / lose / duplicate / redeliver an activity,
advance the clock and tick, crash a step.

Invariants after every operation: each stored history is contiguous from 0, in its current
generation only, with at most one result per scheduled task, timer or child and no result for
anything never scheduled; a terminal instance has no timers and no open activity calls; a
COMPLETED run has the output its input determines. At the end of each example the machine
drains (resume, send the event, advance time, deliver everything, step everything): every
instance must then be terminal with no inbox, outbox or timer row left (nothing stuck, nothing
lost).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

import ledgerflow as wf
from ledgerflow.registration import Registrar
from brokers import wire
from orchestrator.service import Publisher

APP = "d3"
SLOTS = 3

registrar = Registrar()


@registrar.activity
def double(ctx: wf.WorkflowActivityContext, i: int) -> int:
    return 2 * i


@registrar.workflow
def modelled(ctx: wf.DaprWorkflowContext, spec: dict):
    """n activities at once, a 5 s timer, an event "go" with a 20 s timeout, then either a
    continue-as-new (once) or the result."""
    results = yield wf.when_all([ctx.call_activity(double, input=i) for i in range(spec["n"])])
    yield ctx.create_timer(timedelta(seconds=5))
    try:
        go = yield ctx.wait_for_external_event("go", timeout=timedelta(seconds=20))
    except TimeoutError:
        go = "timeout"
    if spec.get("again"):
        ctx.continue_as_new({"n": spec["n"], "again": False}, save_events=True)
        return None
    return {"sum": sum(results), "go": go}


def expected_output(spec: dict, output: Any) -> bool:
    """`go` is the raised value, or "timeout"; a falsy value (0) arrives as None, as with
    Dapr's SDK (durabletask sends event data only `if data`)."""
    n = spec["n"]
    return isinstance(output, dict) and output.get("sum") == n * (n - 1) and output.get("go") in (
        "timeout", None, *range(1, 100))


class Crash(Exception):
    """A simulated process death inside a step."""


class FakePublisher(Publisher):
    def __init__(self) -> None:
        self.wakes: list[str] = []
        self.activities: list[wire.ActivityRequest] = []

    def orchestrate(self, app_id: str, instance_ids: Sequence[str]) -> None:
        self.wakes.extend(instance_ids)

    def activity(self, app_id: str, request: wire.ActivityRequest) -> None:
        self.activities.append(request)


_TEMPLATE: dict[str, str] = {}


def _template_db() -> str:
    """A migrated SQLite file, made once per process; each example copies it."""
    if "path" not in _TEMPLATE:
        from persistence.store import Store

        path = os.path.join(tempfile.mkdtemp(prefix="lf-d3-template-"), "template.db")
        with Store(f"sqlite:///{path}") as store:
            store.migrate()
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


def make_machine(stats: dict[str, int]) -> type[RuleBasedStateMachine]:
    from ledgerflow import errors as lf_errors
    from ledgerflow.config import Settings
    from ledgerflow.management import WorkflowManager
    from orchestrator import faults, ticker
    from orchestrator.rules import AppRules
    from orchestrator.service import OrchestratorService
    from persistence import records
    from persistence.store import Store
    from tests.fixtures import checker
    from workers.activity import run_activity

    real_utcnow = records.utcnow

    class EngineModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.dir = tempfile.mkdtemp(prefix="lf-d3-")
            path = os.path.join(self.dir, "lf.db")
            shutil.copy(_template_db(), path)
            self.url = f"sqlite:///{path}"
            self.store = Store(self.url)
            self.offset = timedelta(0)
            ticker.utcnow = self.now
            self.broker = FakePublisher()
            self.service = OrchestratorService(self.store, registrar.registry, self.broker, APP,
                                               rules=AppRules(activity_lease=timedelta(seconds=30)), clock=self.now)
            self.manager = WorkflowManager(Settings(database_url=self.url, broker_url="memory://localhost/",
                                                    app_id=APP), store=self.store)
            self.manager._wake = lambda app_id, iid: self.broker.orchestrate(app_id, [iid])
            self.manager._changed = lambda iid: None
            self.specs: dict[str, dict] = {}
            self.results: list[tuple[str, dict[str, Any]]] = []
            stats["examples"] = stats.get("examples", 0) + 1

        def now(self) -> datetime:
            return real_utcnow() + self.offset

        # -- operations from outside
        @initialize(n=st.integers(0, 3), again=st.booleans(), also=st.booleans())
        def first_starts(self, n: int, again: bool, also: bool) -> None:
            self.start(0, n, again)
            if also:
                self.start(1, 2, not again)

        @rule(slot=st.integers(0, SLOTS - 1), n=st.integers(0, 3), again=st.booleans())
        def start(self, slot: int, n: int, again: bool) -> None:
            iid = f"m{slot}"
            try:
                self.manager.schedule("modelled", input={"n": n, "again": again}, instance_id=iid)
                self.specs[iid] = {"n": n, "again": again}
            except lf_errors.InstanceActiveError:
                pass
            self._count("start")

        @rule(slot=st.integers(0, SLOTS - 1), value=st.integers(0, 99))
        def raise_go(self, slot: int, value: int) -> None:
            self._tolerant(lambda: self.manager.raise_event(f"m{slot}", "go", value), "raise")

        @rule(slot=st.integers(0, SLOTS - 1))
        def suspend(self, slot: int) -> None:
            self._tolerant(lambda: self.manager.suspend(f"m{slot}"), "suspend")

        @rule(slot=st.integers(0, SLOTS - 1))
        def resume(self, slot: int) -> None:
            self._tolerant(lambda: self.manager.resume(f"m{slot}"), "resume")

        @rule(slot=st.integers(0, SLOTS - 1))
        def terminate(self, slot: int) -> None:
            self._tolerant(lambda: self.manager.terminate(f"m{slot}"), "terminate")

        @rule(slot=st.integers(0, SLOTS - 1))
        def purge(self, slot: int) -> None:
            iid = f"m{slot}"
            try:
                self.manager.purge(iid)
                self.specs.pop(iid, None)
            except (lf_errors.InstanceActiveError, lf_errors.InstanceNotFoundError):
                pass
            self._count("purge")

        # -- the engine's own messages
        @rule(slot=st.integers(0, SLOTS - 1))
        def orchestrate(self, slot: int) -> None:
            self.service.run_until_idle(f"m{slot}")
            self._count("orchestrate")

        @rule()
        def consume_wake(self) -> None:
            """What an orchestrator does with the oldest orchestrate message."""
            if self.broker.wakes:
                self.service.run_until_idle(self.broker.wakes.pop(0))
                self._count("consume wake")

        @rule(data=st.data())
        def run_activity(self, data: st.DataObject) -> None:
            if not self.broker.activities:
                return
            i = data.draw(st.integers(0, len(self.broker.activities) - 1))
            request = self.broker.activities.pop(i)
            self._deliver(request)
            self._count("activity")

        @rule(data=st.data())
        def duplicate_activity(self, data: st.DataObject) -> None:
            """At-least-once: the same request runs twice (a redelivery after a lost ack)."""
            if not self.broker.activities:
                return
            request = self.broker.activities[data.draw(st.integers(0, len(self.broker.activities) - 1))]
            self._deliver(request)
            self._count("duplicate activity")

        @rule(data=st.data())
        def lose_activity(self, data: st.DataObject) -> None:
            if not self.broker.activities:
                return
            self.broker.activities.pop(data.draw(st.integers(0, len(self.broker.activities) - 1)))
            self._count("lost activity")

        @rule(data=st.data())
        def redeliver_result(self, data: st.DataObject) -> None:
            if not self.results:
                return
            iid, message = self.results[data.draw(st.integers(0, len(self.results) - 1))]
            self.service.deliver(iid, message)
            self._count("redelivered result")

        @rule(seconds=st.sampled_from([1, 5, 20, 40]))
        def advance_and_tick(self, seconds: int) -> None:
            self.offset += timedelta(seconds=seconds)
            ticker.tick(self.service, now=self.now(), pending_grace=timedelta(seconds=2))
            self._count("tick")

        @rule(slot=st.integers(0, SLOTS - 1), where=st.sampled_from(["before", "after"]))
        def crash_step(self, slot: int, where: str) -> None:
            name = f"{where}_commit"
            original = getattr(faults, name)

            def crash() -> None:
                raise Crash(name)

            setattr(faults, name, crash)
            try:
                self.service.run_step(f"m{slot}")
            except Crash:
                self._count(f"crash {where} commit")
            finally:
                setattr(faults, name, original)

        # -- helpers
        def _deliver(self, request: wire.ActivityRequest) -> None:
            message = run_activity(registrar.registry, request, app_id=APP)
            self.results.append((request.instance_id, message))
            self.service.deliver(request.instance_id, message)

        def _tolerant(self, op: Any, name: str) -> None:
            try:
                op()
            except (lf_errors.InstanceActiveError, lf_errors.InstanceNotFoundError):
                pass
            self._count(name)

        def _count(self, name: str) -> None:
            stats[name] = stats.get(name, 0) + 1

        # -- invariants
        @invariant()
        def histories_are_sound(self) -> None:
            problems = []
            self._count("invariant checks")
            for inst in self.store.list_instances(app_id=APP, limit=100):
                self._count("histories checked")
                rows = [(e.generation, e.sequence, e.type, e.payload) for e in self._all_history(inst.instance_id)]
                problems += checker.check_history(inst.instance_id, rows, inst.generation, inst.is_terminal)
                if inst.is_terminal:
                    left = self._rows(inst.instance_id, ("timers",)) + self._activity_rows(inst.instance_id)
                    if left:
                        problems.append(f"{inst.instance_id}: {inst.status} with {left} timer/activity row(s)")
                if inst.status == "COMPLETED":
                    import json

                    spec = json.loads(inst.input)
                    if not expected_output(spec, json.loads(inst.output)):
                        problems.append(f"{inst.instance_id}: output {inst.output} for input {inst.input}")
            assert not problems, problems

        def _all_history(self, iid: str) -> list[Any]:
            import sqlalchemy as sa

            from persistence import ops, schema

            t = schema.history_events
            with self.store.engine.connect() as conn:
                return [ops.to_event(r) for r in conn.execute(
                    sa.select(t).where(t.c.instance_id == iid).order_by(t.c.generation, t.c.sequence))]

        def _rows(self, iid: str, tables: tuple[str, ...]) -> int:
            import sqlalchemy as sa

            with self.store.engine.connect() as conn:
                return sum(conn.execute(sa.text(f"SELECT count(*) FROM {t} WHERE instance_id = :i"), {"i": iid})
                           .scalar_one() for t in tables)

        def _activity_rows(self, iid: str) -> int:
            import sqlalchemy as sa

            with self.store.engine.connect() as conn:
                return conn.execute(sa.text("SELECT count(*) FROM outbox WHERE instance_id = :i AND kind = 'activity'"),
                                    {"i": iid}).scalar_one()

        def teardown(self) -> None:
            try:
                self._drain()
            finally:
                ticker.utcnow = real_utcnow
                self.store.close()
                shutil.rmtree(self.dir, ignore_errors=True)

        def _drain(self) -> None:
            """Liveness: with every message delivered and time moving, everything finishes."""
            for _ in range(12):
                live = [i for i in self.store.list_instances(app_id=APP, limit=100) if not i.is_terminal]
                if not live:
                    break
                for inst in live:
                    if inst.status == "SUSPENDED":
                        self.manager.resume(inst.instance_id)
                    self.manager.raise_event(inst.instance_id, "go", 7)
                self.offset += timedelta(seconds=40)
                ticker.tick(self.service, now=self.now(), pending_grace=timedelta(seconds=0))
                while self.broker.activities:
                    self._deliver(self.broker.activities.pop(0))
                for inst in self.store.list_instances(app_id=APP, limit=100):
                    self.service.run_until_idle(inst.instance_id)
            stuck = [(i.instance_id, i.status) for i in self.store.list_instances(app_id=APP, limit=100)
                     if not i.is_terminal]
            assert not stuck, f"instances that never finished: {stuck}"
            for inst in self.store.list_instances(app_id=APP, limit=100):  # drop late messages
                self.service.run_until_idle(inst.instance_id)
            left = {i.instance_id: self._rows(i.instance_id, ("inbox", "timers")) + self._activity_rows(i.instance_id)
                    for i in self.store.list_instances(app_id=APP, limit=100)}
            left = {k: v for k, v in left.items() if v}
            assert not left, f"rows left for finished instances: {left}"
            self.histories_are_sound()
            stats["drained"] = stats.get("drained", 0) + 1

    return EngineModel


def run(examples: int, steps: int, derandomize: bool = True) -> dict[str, int]:
    """Run the machine; returns how often each operation ran. Hypothesis prints the failing
    sequence (and how to reproduce it) when an invariant breaks."""
    stats: dict[str, int] = {}
    run_state_machine_as_test(make_machine(stats), settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=None, derandomize=derandomize))
    return stats
