"""Signed histories tampered on the real stack (S1, S2 of RELIABILITY.md): signing orchestrator,
worker, beat and HTTP API as separate processes over PostgreSQL and Redis, the rows changed
with SQL as an attacker with database access would. The per-field mutation sweeps (every
stored field, Hypothesis byte flips) run in-process in tests/integration/security/."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Callable

import httpx

from security.chain import TAMPERED
from tests.fixtures.chaos import ChaosStack, Faults, RowReport
from tests.fixtures.processes import wait_for

MakeStack = Callable[..., ChaosStack]

#: name -> SQL run against one instance (:i); each changes what the history says or proves.
MUTATIONS: dict[str, list[str]] = {
    "one byte added to an event": [
        "UPDATE history_events SET payload = payload || ' ' WHERE instance_id = :i AND sequence = "
        "(SELECT min(sequence) FROM history_events WHERE instance_id = :i AND type = 'TaskCompleted')"],
    "an event deleted": [
        "DELETE FROM history_events WHERE instance_id = :i AND sequence = "
        "(SELECT min(sequence) FROM history_events WHERE instance_id = :i AND type = 'TaskCompleted')"],
    "two events swapped": [
        "UPDATE history_events SET sequence = -1 WHERE instance_id = :i AND sequence = 1",
        "UPDATE history_events SET sequence = 1 WHERE instance_id = :i AND sequence = 2",
        "UPDATE history_events SET sequence = 2 WHERE instance_id = :i AND sequence = -1"],
    "a signature dropped": [
        "DELETE FROM history_signatures WHERE instance_id = :i AND start_sequence = "
        "(SELECT min(start_sequence) FROM history_signatures WHERE instance_id = :i AND start_sequence > 0)"],
    "a signature's bytes changed": [
        "UPDATE history_signatures SET events_digest = sha256(events_digest) WHERE instance_id = :i AND "
        "start_sequence = 0"],
}


def _wait_for_event(stack: ChaosStack, ids: list[str]) -> None:
    """Until every `evolving` instance has step_a's and step_b's results in its history (and
    so waits for its event) and no message waits in an inbox."""
    wait_for(lambda: stack.sql(
        "SELECT count(*) FROM history_events WHERE type = 'TaskCompleted' AND instance_id IN "
        "(SELECT instance_id FROM instances WHERE app_id = :a AND instance_id NOT LIKE 'warmup-%')",
        a=stack.app_id)[0][0] == 2 * len(ids) and stack.sql(
        "SELECT count(*) FROM inbox WHERE instance_id IN (SELECT instance_id FROM instances WHERE app_id = :a)",
        a=stack.app_id)[0][0] == 0, 120, message="every instance to wait for its event", logs=stack.procs)


def _fingerprint(stack: ChaosStack, iid: str) -> str:
    """A digest of every stored row of one instance's history and signatures."""
    rows = stack.sql("SELECT generation, sequence, type, payload, timestamp FROM history_events "
                     "WHERE instance_id = :i ORDER BY generation, sequence", i=iid)
    rows += stack.sql("SELECT start_sequence, event_count, events_digest, signature FROM history_signatures "
                      "WHERE instance_id = :i ORDER BY start_sequence", i=iid)
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def _tamper(stack: ChaosStack, faults: Faults, iid: str, label: str, statements: list[str], **params: object) -> None:
    """Run ``statements`` against instance ``iid`` in one transaction; assert they changed it."""
    before = _fingerprint(stack, iid)
    stack.execute(statements, i=iid, **params)
    assert _fingerprint(stack, iid) != before, f"{label} changed nothing in {iid}"
    faults.record("tamper", f"{iid}: {label}")


def s1_completed_tampered(make_stack: MakeStack, faults: Faults, row: RowReport, *, workflows: int) -> None:
    """Tamper COMPLETED signed workflows; every read through the HTTP API (a signing process)
    reports it, naming the failed check, and changes no stored row; the checker's own
    verification fails for each of them too."""
    stack = make_stack(signing=True)
    stack.start_all(workers=1)
    base = stack.start_api(token=uuid.uuid4().hex)
    stack.warm_up()
    client = stack.client()
    ids = [stack.schedule(client, "evolving", None) for _ in range(workflows)]
    _wait_for_event(stack, ids)
    for iid in ids:
        client.raise_workflow_event(iid, "go")
    stack.wait_terminal(ids, 120)
    stack.check(expected_output={iid: "abc" for iid in ids})  # every history verifies before the attack
    mutations = list(MUTATIONS)
    done: dict[str, str] = {}
    for k, iid in enumerate(ids):
        done[iid] = mutations[k % len(mutations)]
        _tamper(stack, faults, iid, done[iid], MUTATIONS[done[iid]])
    answers: Counter[str] = Counter()
    checks: Counter[str] = Counter()
    missed = []
    with httpx.Client(base_url=base, headers=stack.api_headers(), timeout=30) as http:
        for iid, mutation in done.items():
            stored = _fingerprint(stack, iid)
            r = http.get(f"/v1.0/workflows/dapr/{iid}")
            body = r.json()
            answers[f"{r.status_code} {body.get('errorCode', 'ok')}"] += 1
            found = re.search(r"failed verification \(([^)]+)\)", body.get("message", ""))
            if found is None:
                missed.append((iid, mutation, r.status_code, body))
            else:
                checks[found.group(1)] += 1
            assert _fingerprint(stack, iid) == stored, f"a read rewrote the history of {iid}"
    report = stack.check(expected_output={iid: "abc" for iid in ids}, tampered=ids)
    row.figure("workflows", f"{len(ids)} signed, COMPLETED, then tampered "
                            f"({len(mutations)} kinds: {', '.join(mutations)})")
    row.figure("detected on read", f"{len(ids) - len(missed)}/{len(ids)}")
    row.figure("HTTP answers", dict(answers))
    row.figure("failed checks", dict(checks))
    row.figure("stored rows rewritten by a read", 0)
    row.figure("checker", report.summary())
    assert not missed, f"tampering not detected on read: {missed}"
    assert set(answers) == {"500 ERR_GET_WORKFLOW"}, answers


def s2_running_tampered(make_stack: MakeStack, faults: Faults, row: RowReport, *, workflows: int) -> None:
    """Tamper RUNNING signed workflows that wait for an event, then deliver it: each FAILS with
    DAPR_WORKFLOW_HISTORY_TAMPERED and dispatches nothing more. Half are tampered in their newest
    batch while the orchestrator holds them warm; half in an old batch, then the orchestrator is
    killed so the next step loads them cold."""
    stack = make_stack(signing=True)
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    ids = [stack.schedule(client, "evolving", None) for _ in range(workflows)]
    warm, cold = ids[: len(ids) // 2], ids[len(ids) // 2:]
    _wait_for_event(stack, ids)
    ran_before = len(stack.ledger.rows())
    for iid in warm:  # the last event of the newest signed batch
        last = stack.sql("SELECT max(start_sequence + event_count - 1) FROM history_signatures "
                         "WHERE instance_id = :i", i=iid)[0][0]
        _tamper(stack, faults, iid, f"newest batch, sequence {last}", [
            "UPDATE history_events SET payload = payload || ' ' WHERE instance_id = :i AND sequence = :s"], s=last)
    for iid in warm:
        client.raise_workflow_event(iid, "go")
    stack.wait_terminal(warm, 120)
    for iid in cold:
        _tamper(stack, faults, iid, "one byte added to an event", MUTATIONS["one byte added to an event"])
    faults.kill9(stack.processes["orchestrator"])
    stack.start_orchestrator("orchestrator-2")
    for iid in cold:
        client.raise_workflow_event(iid, "go")
    stack.wait_terminal(cold, 120)
    states = {iid: client.get_workflow_state(iid) for iid in ids}
    outcomes = Counter(f"{s.runtime_status.name} {s.failure_details.error_type if s.failure_details else ''}"
                       for s in states.values())
    after = [(r.name, r.instance_id, r.attempt) for r in stack.ledger.rows()[ran_before:]]
    outbox = stack.sql("SELECT count(*) FROM outbox WHERE instance_id IN (SELECT instance_id FROM instances "
                       "WHERE app_id = :a AND status = 'FAILED')", a=stack.app_id)[0][0]
    report = stack.check(expect_status=None, tampered=ids)
    row.figure("workflows", f"{len(warm)} tampered warm (newest batch), {len(cold)} cold (an old batch, "
                            "orchestrator killed)")
    row.figure("outcomes", dict(outcomes))
    row.figure("activities after tamper", len(after))
    row.figure("outbox rows left", outbox)
    row.figure("checker", report.summary())
    assert outcomes == Counter({f"FAILED {TAMPERED}": len(ids)}), outcomes
    assert not after and stack.ledger.count(name="step_c") == 0, f"activities ran after the tamper: {after}"
