"""Engine bugs the reliability rows found, each replayed as the exact sequence that broke it
(the rows find them by chance; these keep them fixed on every run)."""

from __future__ import annotations

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
        assert sent[-1]["execution_id"] == sent[0]["execution_id"]  # the same call, not a new one
    finally:
        machine.teardown()
