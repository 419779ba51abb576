"""Signed histories end to end over the real step (S1-S6 of RELIABILITY.md, reduced size).

Each test is a reliability row (`@pytest.mark.row`): its detection counts are printed in the
"reliability rows" section of the summary, and asserted to be 100%.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from brokers import wire
from ledgerflow.access import HistoryTamperedError
from orchestrator import inbox
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from persistence import schema
from persistence.records import NewInboxMessage, utcnow
from persistence.store import Store
from security import attest
from security.certs import init_certs
from security.chain import TAMPERED
from tests.fixtures.chaos import RowReport
from tests.integration.security import apps
from tests.integration.security.harness import Bus, failure_of, security_for

COUNTS: dict[tuple[str, str], list[int]] = {}


def count(report: RowReport, name: str, detected: bool) -> None:
    """Tally one attempt of the row's attack `name`; the row's figure shows detected/attempts."""
    c = COUNTS.setdefault((report.nodeid, name), [0, 0])
    c[0] += 1
    c[1] += int(detected)
    report.figure(name, f"{c[1]}/{c[0]} detected")


def orders_bus(store: Store, certs: Path | None, **kw: Any) -> Bus:
    bus = Bus(store)
    bus.add_app("orders", apps.orders, security_for("orders", certs, **kw))
    bus.add_app("billing", apps.billing, security_for("billing", certs, **kw))
    return bus


# -- mutations of stored fields ---------------------------------------------------------

FIELDS: list[tuple[sa.Table, str]] = [
    (schema.history_events, c) for c in ("instance_id", "generation", "sequence", "type", "payload", "timestamp")
] + [
    (schema.history_signatures, c) for c in ("instance_id", "generation", "start_sequence", "event_count",
                                            "previous_digest", "events_digest", "cert_id", "signed_at",
                                            "signature")
] + [
    (schema.instances, c) for c in ("signature_head", "signed_events", "signed", "generation", "created_at",
                                    "app_id")
] + [(schema.history_certificates, "der")]
COMPLETED_ONLY = [(schema.instances, "output")]


def mutate(value: Any, k: int) -> Any:
    from datetime import datetime, timedelta

    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + (k % 7) + 1
    if isinstance(value, datetime):
        return value + timedelta(microseconds=(k % 5000) + 1)
    if isinstance(value, (bytes, memoryview)):
        value = bytes(value)
        i = k % len(value)
        return value[:i] + bytes([value[i] ^ ((k % 255) + 1)]) + value[i + 1:]
    assert isinstance(value, str) and value
    i = k % len(value)
    flipped = chr(ord(value[i]) ^ ((k % 31) + 1))
    if flipped in "\x00\ud800":
        flipped = "#"
    return value[:i] + flipped + value[i + 1:]


def apply_mutation(store: Store, instance_id: str, table: sa.Table, column: str, row: int, k: int) -> str | None:
    key = table.c.instance_id if "instance_id" in table.c else None
    pk = list(table.primary_key.columns)[0]
    with store.engine.begin() as conn:
        stmt = sa.select(pk, table.c[column]).order_by(pk)
        if key is not None:
            stmt = stmt.where(key == instance_id)
        rows = conn.execute(stmt).all()
        target_pk, value = rows[row % len(rows)]
        if value is None:
            value = b"\x00" * 32 if column == "signature_head" else value
        new = "wf-0" if column == "instance_id" else mutate(value, k)  # moved to another instance
        try:
            conn.execute(sa.update(table).where(pk == target_pk).values({column: new}))
        except sa.exc.IntegrityError:
            return None  # the database itself forbids this change (a unique key): nothing to detect
    return f"{table.name}.{column}"


def tampered_read(bus: Bus, instance_id: str) -> str | None:
    try:
        bus.read(instance_id, "orders")  # an orders process reads it, whatever the row says
    except HistoryTamperedError as exc:
        return exc.check
    return None


@pytest.fixture(scope="module")
def completed_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("s1")
    certs = d / "certs"
    store = Store(f"sqlite:///{d / 'base.db'}")
    store.migrate()
    bus = orders_bus(store, certs)
    bus.start("orders", "chain", 1, "wf-0")  # a neighbour rows can be moved to (never run)
    bus.queue.clear()
    bus.start("orders", "chain", 4, "wf-1")
    bus.run()
    assert store.get_instance("wf-1").status == "COMPLETED"
    bus.read("wf-1")
    store.close()
    return d / "base.db", certs


def copy_store(base: Path, tmp: Path) -> Store:
    tmp.mkdir(parents=True, exist_ok=True)
    target = tmp / f"work-{id(tmp)}.db"
    shutil.copy(base, target)
    return Store(f"sqlite:///{target}")


# S1 ---------------------------------------------------------------------------------------

@pytest.mark.row("S1")
@settings(max_examples=150, database=None, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS + COMPLETED_ONLY), index=st.integers(0, 30), k=st.integers(0, 100_000))
def test_s1_byte_flips_in_a_completed_history_are_reported_on_read(completed_db, tmp_path_factory, row, field, index,
                                                                    k) -> None:
    base, certs = completed_db
    store = copy_store(base, tmp_path_factory.mktemp("m"))
    try:
        bus = orders_bus(store, certs)
        before = bus.rows("SELECT count(*) FROM history_events")[0][0]
        where = apply_mutation(store, "wf-1", *field, index, k)
        assume(where is not None)
        check = tampered_read(bus, "wf-1")
        count(row, "S1 byte flips (completed, read)", check is not None)
        assert check is not None, f"mutation of {where} was not detected"
        assert bus.rows("SELECT count(*) FROM history_events")[0][0] == before  # nothing rewritten
    finally:
        store.close()


@pytest.mark.row("S1")
def test_s1_deleted_swapped_inserted_events_and_dropped_signatures(row: RowReport, completed_db, tmp_path: Path) -> None:
    base, certs = completed_db
    attacks = {
        "delete an event": "DELETE FROM history_events WHERE instance_id='wf-1' AND sequence=4",
        "swap two events": ["UPDATE history_events SET sequence = -1 WHERE instance_id='wf-1' AND sequence = 4",
                            "UPDATE history_events SET sequence = 4 WHERE instance_id='wf-1' AND sequence = 5",
                            "UPDATE history_events SET sequence = 5 WHERE instance_id='wf-1' AND sequence = -1"],
        "insert an event": "INSERT INTO history_events (instance_id, generation, sequence, type, payload, timestamp) "
                           "VALUES ('wf-1', 0, 99, 'TaskCompleted', '{}', '2025-01-01 00:00:00')",
        "drop a signature": "DELETE FROM history_signatures WHERE instance_id='wf-1' AND start_sequence=3",
        "drop every signature": "DELETE FROM history_signatures WHERE instance_id='wf-1'",
        "drop the last signature": "DELETE FROM history_signatures WHERE instance_id='wf-1' AND start_sequence = "
                                   "(SELECT max(start_sequence) FROM history_signatures WHERE instance_id='wf-1')",
    }
    found = {}
    for name, sql in attacks.items():
        store = copy_store(base, tmp_path / name.replace(" ", "_"))
        try:
            bus = orders_bus(store, certs)
            for statement in [sql] if isinstance(sql, str) else sql:
                bus.execute(statement)
            found[name] = tampered_read(bus, "wf-1")
            count(row, "S1 structural (completed, read)", found[name] is not None)
        finally:
            store.close()
    assert all(found.values()), found


# S2 ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def running_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("s2")
    certs = d / "certs"
    store = Store(f"sqlite:///{d / 'base.db'}")
    store.migrate()
    bus = orders_bus(store, certs)
    bus.start("orders", "chain", 1, "wf-0")
    bus.queue.clear()
    bus.start("orders", "waiter", None, "wf-1")
    bus.run()
    assert store.get_instance("wf-1").status == "RUNNING"
    store.close()
    return d / "base.db", certs


def deliver_next_and_check(bus: Bus, store: Store) -> tuple[str, int]:
    calls = len(apps.CALLS)
    bus.raise_event("wf-1", "go", 1, app_id="orders")  # the orders orchestrator, whatever the row says
    bus.run()
    inst = store.get_instance("wf-1")
    return (failure_of(store, "wf-1").get("error_type") if inst.status == "FAILED" else inst.status,
            len(apps.CALLS) - calls)


@pytest.mark.row("S2")
@settings(max_examples=60, database=None, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), index=st.integers(0, 30), k=st.integers(0, 100_000))
def test_s2_a_tampered_running_workflow_fails_and_dispatches_nothing(running_db, tmp_path_factory, row, field, index,
                                                                     k) -> None:
    base, certs = running_db
    store = copy_store(base, tmp_path_factory.mktemp("m"))
    try:
        bus = orders_bus(store, certs)  # a fresh orchestrator: a cold load
        events_before = bus.rows("SELECT count(*) FROM history_events WHERE instance_id='wf-1'")[0][0]
        where = apply_mutation(store, "wf-1", *field, index, k)
        assume(where is not None)
        outcome, activities = deliver_next_and_check(bus, store)
        count(row, "S2 byte flips (running, next step)", outcome == TAMPERED and activities == 0)
        assert (outcome, activities) == (TAMPERED, 0), f"mutation of {where}"
        assert not bus.requests, "nothing may be dispatched"
        after = bus.rows("SELECT count(*) FROM history_events WHERE instance_id IN ('wf-1')")[0][0]
        assert after <= events_before + 1  # one unsigned terminal event at most
    finally:
        store.close()


@pytest.mark.row("S2")
def test_s2_warm_path_head_checks_and_completion_check(row: RowReport, running_db, tmp_path: Path) -> None:
    base, certs = running_db
    cases = {
        "last batch payload": ("UPDATE history_events SET payload = replace(payload, 'other', 'otheR') "
                               "WHERE instance_id='wf-1'", True),
        "tail cut": ("DELETE FROM history_events WHERE instance_id='wf-1' AND sequence >= "
                     "(SELECT max(start_sequence) FROM history_signatures WHERE instance_id='wf-1')", True),
        "dropped last signature": ("DELETE FROM history_signatures WHERE instance_id='wf-1' AND start_sequence = "
                                   "(SELECT max(start_sequence) FROM history_signatures WHERE instance_id='wf-1')",
                                   True),
        "old batch (warm: caught at completion)": (
            "UPDATE history_events SET payload = replace(payload, '\"input\":\"1\"', '\"input\":\"5\"') "
            "WHERE instance_id='wf-1' AND sequence < 3", False),
    }
    for name, (sql, immediate) in cases.items():
        store = copy_store(base, tmp_path / name.replace(" ", "_").replace(":", ""))
        try:
            bus = orders_bus(store, certs)
            bus.raise_event("wf-1", "other", None)  # one warm-up step: this process now holds it warm
            bus.run()
            assert bus.services["orders"].cache.hits + bus.services["orders"].cache.misses >= 1
            bus.execute(sql)
            calls = len(apps.CALLS)
            bus.raise_event("wf-1", "go", 1)
            bus.run()
            inst = store.get_instance("wf-1")
            assert inst.status == "FAILED" and failure_of(store, "wf-1")["error_type"] == TAMPERED, name
            ran = len(apps.CALLS) - calls
            count(row, "S2 warm path", True)
            if immediate:
                assert ran == 0, name
            else:  # the in-memory state was genuine; completion re-verified everything
                assert ran == 2 and inst.output is None, name
        finally:
            store.close()


@pytest.mark.row("S2")
def test_s2_full_verify_mode_catches_old_batches_at_once(row: RowReport, running_db, tmp_path: Path) -> None:
    base, certs = running_db
    store = copy_store(base, tmp_path)
    bus = orders_bus(store, certs, verify_mode="full")
    bus.raise_event("wf-1", "other", None)
    bus.run()
    bus.execute("UPDATE history_events SET payload = replace(payload, '\"input\":\"1\"', '\"input\":\"5\"') "
                "WHERE instance_id='wf-1' AND sequence < 3")
    outcome = deliver_next_and_check(bus, store)
    count(row, "S2 full verify mode: old batch caught at the next step", outcome == (TAMPERED, 0))
    assert outcome == (TAMPERED, 0)
    store.close()


@pytest.mark.row("S2")
def test_s2_timers_and_open_activities_are_cancelled(row: RowReport, sqlite_store: Store, certs: Path) -> None:
    bus = orders_bus(sqlite_store, certs)
    bus.start("orders", "timer_waiter", None, "wf-1")
    bus.run()
    assert bus.rows("SELECT count(*) FROM timers WHERE instance_id='wf-1'")[0][0] == 1
    rows_before = bus.rows("SELECT sequence, type, payload FROM history_events WHERE instance_id='wf-1' "
                           "ORDER BY sequence")
    bus.execute("UPDATE history_events SET payload = payload || ' ' WHERE instance_id='wf-1' AND sequence = 0")
    bus.services["orders"].cache.discard("wf-1")
    bus.raise_event("wf-1", "poke", None)
    bus.run()
    inst = sqlite_store.get_instance("wf-1")
    failure = failure_of(sqlite_store, "wf-1")
    assert inst.status == "FAILED" and failure["error_type"] == TAMPERED
    assert "digest" in failure["message"]
    assert bus.rows("SELECT count(*) FROM timers WHERE instance_id='wf-1'")[0][0] == 0
    assert bus.rows("SELECT count(*) FROM outbox WHERE instance_id='wf-1' AND kind='activity'")[0][0] == 0
    after = bus.rows("SELECT sequence, type, payload FROM history_events WHERE instance_id='wf-1' ORDER BY sequence")
    assert [tuple(r) for r in after[:-1]] == [(0, rows_before[0][1], rows_before[0][2] + " ")] + \
        [tuple(r) for r in rows_before[1:]]  # stored rows never rewritten
    assert after[-1][1] == "ExecutionCompleted" and TAMPERED in after[-1][2]
    assert bus.rows("SELECT count(*) FROM history_signatures WHERE instance_id='wf-1' AND start_sequence = :s",
                    s=after[-1][0])[0][0] == 0  # the marker is unsigned
    bus.tick("orders")
    bus.run()
    assert not bus.requests[1:], "nothing dispatched after the tamper"
    assert bus.read("wf-1").status == "FAILED"  # reads as the recorded tamper failure
    count(row, "S2 timers and open activities cancelled", True)


# S3 ---------------------------------------------------------------------------------------

def forged(message_id: str, event: ev.HistoryEvent, attestation: dict | None = None) -> NewInboxMessage:
    msg = inbox.message(message_id, event)
    payload = attest.embed(msg.payload, attestation) if attestation else msg.payload
    return NewInboxMessage(msg.message_id, msg.type, payload)


@pytest.mark.row("S3")
def test_s3_completions_for_tasks_never_scheduled_are_rejected(row: RowReport, sqlite_store: Store, certs: Path) -> None:
    for signing in (None, certs):
        bus = orders_bus(sqlite_store, signing)
        iid = bus.start("orders", "waiter", None, f"wf-{bool(signing)}")
        bus.run()
        now = clock.naive_utc(utcnow())
        sqlite_store.enqueue(iid, [forged("f1", ev.TaskCompleted(now, 42, '"forged"')),
                                   forged("f2", ev.TaskCompleted(now, 0, '"again"')),
                                   forged("f3", ev.SubOrchestrationInstanceCompleted(now, 1, '"x"')),
                                   forged("f4", ev.TimerFired(now, 9, now))])
        bus.queue.append(("orchestrate", "orders", iid))
        bus.run()
        history = [e.payload for e in sqlite_store.history(iid)]
        assert not any("forged" in p or "again" in p for p in history)
        assert sqlite_store.get_instance(iid).status == "RUNNING"
        count(row, "S3 never-scheduled completions rejected", True)
        bus.raise_event(iid, "go", 1)
        bus.run()
        assert sqlite_store.get_instance(iid).output == "5"


@pytest.mark.row("S3")
def test_s3_cross_app_results_need_the_callees_attestation(row: RowReport, sqlite_store: Store, certs: Path) -> None:
    bus = orders_bus(sqlite_store, certs)
    bus.add_app("mallory", apps.mallory, security_for("mallory", certs))
    held: list[wire.ActivityRequest] = []
    bus.on_request = lambda app, req: (held.append(req), None)[1] if app == "billing" else req
    iid = bus.start("orders", "checkout", {"input": 3}, "x1")
    bus.run()
    [request] = held
    now = clock.naive_utc(utcnow())
    genuine = ev.TaskCompleted(now, request.task_id, '"charged 3"')
    fake = ev.TaskCompleted(now, request.task_id, '"charged 0"')
    t, p = inbox.message("x", fake).type, inbox.message("x", fake).payload
    sec = bus.securities
    attempts = {
        "no attestation": forged("a1", fake),
        "attested by another app": forged("a2", fake, attest.attest(sec["mallory"].identity, attest.COMPLETION,
                                                                    iid, t, p)),
        "callee's attestation of another result": forged("a3", fake, attest.attest(
            sec["billing"].identity, attest.COMPLETION, iid, t, inbox.message("x", genuine).payload)),
        "callee's attestation for another instance": forged("a4", fake, attest.attest(
            sec["billing"].identity, attest.COMPLETION, "other", t, p)),
        "garbage attestation": forged("a5", fake, {"cert": "x", "sig": "y", "at": "z"}),
    }
    for name, message in attempts.items():
        sqlite_store.enqueue(iid, [message])
        bus.queue.append(("orchestrate", "orders", iid))
        bus.run()
        ok = sqlite_store.get_instance(iid).status == "RUNNING"
        count(row, "S3 forged cross-app results rejected", ok)
        assert ok, name
    bus.on_request = None
    bus.queue.append(("activity", "billing", request))
    bus.run()
    assert sqlite_store.get_instance(iid).output == '"charged 3"'


# S4 ---------------------------------------------------------------------------------------

@pytest.mark.row("S4")
def test_s4_transplant_and_consistent_tail_cut(row: RowReport, completed_db, tmp_path: Path) -> None:
    base, certs = completed_db
    store = copy_store(base, tmp_path / "t")
    bus = orders_bus(store, certs)
    cols = ", ".join(c.name for c in schema.instances.c if c.name != "instance_id")
    bus.execute(f"INSERT INTO instances (instance_id, {cols}) SELECT 'wf-2', {cols} FROM instances "
                "WHERE instance_id='wf-1'")
    bus.execute("INSERT INTO history_events (instance_id, generation, sequence, type, payload, timestamp) "
                "SELECT 'wf-2', generation, sequence, type, payload, timestamp FROM history_events "
                "WHERE instance_id='wf-1'")
    sig_cols = "generation, start_sequence, event_count, previous_digest, events_digest, cert_id, signed_at, signature"
    bus.execute(f"INSERT INTO history_signatures (instance_id, {sig_cols}) SELECT 'wf-2', {sig_cols} "
                "FROM history_signatures WHERE instance_id='wf-1'")
    check = tampered_read(bus, "wf-2")
    count(row, "S4 transplant", check == "signature")
    assert check == "signature"
    bus.read("wf-1")  # the original is untouched
    last = bus.rows("SELECT max(start_sequence) FROM history_signatures WHERE instance_id='wf-1'")[0][0]
    bus.execute("DELETE FROM history_events WHERE instance_id='wf-1' AND sequence >= :s", s=last)
    bus.execute("DELETE FROM history_signatures WHERE instance_id='wf-1' AND start_sequence >= :s", s=last)
    check = tampered_read(bus, "wf-1")
    count(row, "S4 tail cut", check == "tail")
    assert check == "tail"
    store.close()


# S5 ---------------------------------------------------------------------------------------

@pytest.mark.row("S5")
def test_s5_signing_is_one_way(row: RowReport, sqlite_store: Store, certs: Path) -> None:
    signed = orders_bus(sqlite_store, certs)
    signed.start("orders", "waiter", None, "signed-wf")
    signed.run()
    unsigned = orders_bus(sqlite_store, None)
    unsigned.start("orders", "waiter", None, "plain-wf")
    unsigned.run()
    assert sqlite_store.get_instance("signed-wf").signed and not sqlite_store.get_instance("plain-wf").signed

    history = sqlite_store.history("signed-wf")
    unsigned.raise_event("signed-wf", "go", 1)
    unsigned.run()
    inst = sqlite_store.get_instance("signed-wf")
    failure = failure_of(sqlite_store, "signed-wf")
    assert inst.status == "STALLED" and failure["error_type"] == "WorkflowSigningConfigurationError"
    assert "LEDGERFLOW_SIGNING=on" in failure["message"] and "one-way" in failure["message"]
    assert sqlite_store.history("signed-wf") == history

    signed.raise_event("plain-wf", "go", 1)
    signed.run()
    failure = failure_of(sqlite_store, "plain-wf")
    assert sqlite_store.get_instance("plain-wf").status == "STALLED"
    assert "LEDGERFLOW_SIGNING=off" in failure["message"] and "purge" in failure["message"]
    count(row, "S5 one-way refusals", True)

    signed.queue.append(("orchestrate", "orders", "signed-wf"))  # the right host picks them up again
    signed.run()
    unsigned.queue.append(("orchestrate", "orders", "plain-wf"))
    unsigned.run()
    assert sqlite_store.get_instance("signed-wf").output == "5"
    assert sqlite_store.get_instance("plain-wf").output == "5"
    signed.read("signed-wf")


# S6 ---------------------------------------------------------------------------------------

@pytest.mark.row("S6")
def test_s6_rotation_same_ca_new_ca_and_expired(row: RowReport, tmp_path: Path) -> None:
    def run(db: str, certs_dir: Path) -> tuple[Store, Bus]:
        store = Store(f"sqlite:///{tmp_path / db}")
        store.migrate()
        bus = orders_bus(store, certs_dir)
        bus.start("orders", "waiter", None, "wf-1")
        bus.run()
        return store, bus

    certs = tmp_path / "certs"
    store, first = run("a.db", certs)
    init_certs(certs, "orders")  # rotate the leaf under the same CA
    rotated = orders_bus(store, certs)
    rotated.raise_event("wf-1", "go", 1)
    rotated.run()
    assert store.get_instance("wf-1").output == "5"
    fps = rotated.rows("SELECT count(*) FROM history_certificates")[0][0]
    assert fps == 2  # two certificates signed parts of one history
    rotated.read("wf-1")
    count(row, "S6 rotation verifies", True)

    store2, _ = run("b.db", certs)
    other_ca = tmp_path / "other-ca"
    moved = orders_bus(store2, other_ca)
    moved.raise_event("wf-1", "go", 1)
    moved.run()
    failure = failure_of(store2, "wf-1")
    assert failure["error_type"] == TAMPERED and "certificate chain" in failure["message"]
    count(row, "S6 new CA fails", True)

    store3, _ = run("c.db", certs)
    from security import crypto
    from datetime import timedelta

    init_certs(certs, "orders", days=1, not_before=crypto.now_utc() - timedelta(days=3))
    expired = orders_bus(store3, None)
    expired.securities["orders"] = expired.services["orders"].guard._fixed = _expired_ctx(certs)
    expired.raise_event("wf-1", "go", 1)
    expired.run()
    failure = failure_of(store3, "wf-1")
    assert store3.get_instance("wf-1").status == "STALLED" and "not valid now" in failure["message"]
    count(row, "S6 expired certificate refused", True)
    for s in (store, store2, store3):
        s.close()


def _expired_ctx(certs: Path):
    from security import context as sec_context
    from security import crypto

    return sec_context.SecurityContext("orders", crypto.load_identity(certs / "orders.crt", certs / "orders.key"),
                                       crypto.load_bundle(certs / "ca.crt"))


# on PostgreSQL (bytea, timestamptz) --------------------------------------------------------

@pytest.mark.row("S1")
@pytest.mark.integration
def test_signed_history_round_trips_on_postgres(row: RowReport, postgres_db_url: str, certs: Path) -> None:
    store = Store(postgres_db_url)
    try:
        bus = orders_bus(store, certs)
        bus.start("orders", "checkout", {"verify": True, "scope": "LINEAGE", "child": "invoice", "input": 4}, "pg-1")
        bus.run()
        assert store.get_instance("pg-1").status == "COMPLETED"
        bus.read("pg-1")
        bus.read("pg-1:0001")
        bus.execute("UPDATE history_events SET payload = replace(payload, 'charged 4', 'charged 1') "
                    "WHERE instance_id = 'pg-1:0001'")
        assert tampered_read(bus, "pg-1:0001") == "digest"
        count(row, "PostgreSQL tamper", True)
    finally:
        store.close()

