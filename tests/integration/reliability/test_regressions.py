"""Engine bugs the reliability rows found, each replayed as the exact sequence that broke it
(the rows find them by chance; these keep them fixed on every run), and the design rules of
RELIABILITY.md that no row exercises."""

from __future__ import annotations

import json

from tests.chaos import statemachine


def test_d3_a_result_redelivered_while_suspended_is_recorded_once() -> None:
    """D3 (full size) found: start, step, suspend, then the same activity result delivered
    twice. Both copies were admitted (the first sat in the suspended buffer, so the task still
    looked open) and the history held two TaskCompleted for one task."""
    machine = statemachine.make_machine({})()
    try:
        machine.first_starts(n=1, again=False, also=False)
        machine.consume_wake()
        machine.suspend(slot=0)
        request = machine.broker.activities[0]
        machine._deliver(request)
        machine._deliver(request)
        machine.histories_are_sound()
        machine.resume(slot=0)
        machine.orchestrate(slot=0)
        machine.histories_are_sound()
    finally:
        machine.teardown()


def test_an_activity_waiting_in_a_long_queue_is_re_sent_with_a_doubling_lease() -> None:
    """C7 (2,000 queued activities) re-sent every unanswered call every lease period, which
    only grew the queue. Each re-send now doubles the lease (30 s, 60 s, 120 s, ... up to 16x)."""
    from datetime import timedelta

    from orchestrator import ticker

    machine = statemachine.make_machine({})()
    try:
        machine.first_starts(n=1, again=False, also=False)
        machine.consume_wake()
        sent = machine.broker.activities
        assert len(sent) == 1
        resends = []
        for seconds in (29, 31, 31 + 59, 31 + 61, 92 + 119, 92 + 121):
            machine.offset = timedelta(seconds=seconds)  # the machine's clock
            ticker.tick(machine.service)
            resends.append(len(sent) - 1)
        assert resends == [0, 1, 1, 2, 2, 3]
        assert sent[-1].execution_id == sent[0].execution_id  # the same call, not a new one
    finally:
        machine.teardown()


def test_an_activity_that_kills_its_worker_every_time_is_parked(make_stack, faults) -> None:
    """RELIABILITY.md: "a message that keeps killing its worker is parked with a clear status,
    not retried forever". The call's worker dies on each delivery; after
    LEDGERFLOW_MAX_DELIVERIES deaths the next delivery answers ActivityDeliveryLimitExceeded,
    which no retry policy retries, and the workers keep serving."""
    stack = make_stack(env={"LEDGERFLOW_MAX_DELIVERIES": "3"})
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    iid = stack.schedule(client, "poisoned", None)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=120)
    output = json.loads(state.serialized_output)
    assert state.runtime_status.name == "COMPLETED", (state, stack.logs())
    assert output["failed"] == "ActivityDeliveryLimitExceeded", output
    assert "died on each of its last 3 deliveries" in output["message"] and iid in output["message"]
    assert stack.ledger.count(name="poison") == 3  # ran three times (each killed its process), then parked
    assert stack.processes["worker-0"].is_alive()  # the prefork parent replaced its dead children
    stack.warm_up()  # and still serves
    stack.check(expect_status="COMPLETED")


def test_copies_of_a_call_that_waited_past_its_lease_send_the_remembered_result(make_stack) -> None:
    """C6 (lease 15 s, queues of minutes) counted 912 duplicate executions: every call still
    queued when its lease ended was re-sent, and each copy ran. Workers now remember each
    call's result (Redis); a copy of a finished call sends that result again instead."""
    stack = make_stack(env={"LEDGERFLOW_ACTIVITY_LEASE": "1"})
    stack.start_all(workers=1, worker_concurrency=1)
    stack.warm_up()
    client = stack.client()
    ids = stack.schedule_many(client, "chain", ({"x": i, "n": 1, "sleep": 0.6} for i in range(8)))
    stack.wait_terminal(ids, 120)
    stack.check(expected_output={iid: i * 2 for i, iid in enumerate(ids)})
    calls = len(ids) + 1  # with the warm-up's
    received = stack.log_lines("worker", "] received")  # Celery logs each delivery of a task
    assert received > calls, "no call waited past its lease: the test proved nothing"
    assert stack.ledger.duplicates() == 0
    # each copy sent the remembered result, or was not run while its first delivery still ran
    copies = stack.log_lines("worker", "activity already ran") + stack.log_lines("worker", "held by another live worker")
    assert copies == received - calls
