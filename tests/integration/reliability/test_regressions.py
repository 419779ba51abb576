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
