"""The delivery cap (workers.limits.DeliveryCap) over the in-process call memory."""

from __future__ import annotations

from dataclasses import replace

from brokers.deliveries import CallMemory
from brokers.wire import ActivityRequest, ResultMessage
from workers.limits import DELIVERY_LIMIT_EXCEEDED, DeliveryCap

REQUEST = ActivityRequest(instance_id="order-7", app_id="orders", target_app_id="orders", pool=None, generation=0,
                          run=None, task_id=0, name="charge", input=None, execution_id="e1", attempt=1)
RESULT = ResultMessage("task:0:0", "TaskCompleted", "{}", 0)


def _die_inside(cap: DeliveryCap, request: ActivityRequest = REQUEST) -> None:
    """A delivery whose process dies mid-run: `end` is never called."""
    assert cap.begin(request) == (None, None)


def test_a_call_is_parked_after_its_worker_died_limit_times() -> None:
    cap = DeliveryCap(CallMemory("memory://"), 2)
    _die_inside(cap)
    _die_inside(cap)
    result, parked = cap.begin(REQUEST)
    assert result is None and parked is not None and parked.error_type == DELIVERY_LIMIT_EXCEEDED
    assert "'charge'" in parked.message and "'order-7'" in parked.message and "last 2 deliveries" in parked.message


def test_a_finished_run_clears_the_count_and_other_calls_are_counted_apart() -> None:
    cap = DeliveryCap(CallMemory("memory://"), 2)
    _die_inside(cap)
    assert cap.begin(REQUEST) == (None, None)  # a death, then a normal run: the count starts over
    cap.end(REQUEST, RESULT)
    _die_inside(cap)
    _die_inside(cap, replace(REQUEST, attempt=2))  # a retry is another call
    assert cap.begin(REQUEST) == (None, None)


def test_zero_turns_the_cap_off() -> None:
    cap = DeliveryCap(CallMemory("memory://"), 0)
    for _ in range(20):
        _die_inside(cap)
    assert cap.begin(REQUEST) == (None, None)
