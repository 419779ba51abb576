"""The delivery cap (workers.limits.DeliveryCap) over the in-process counter."""

from __future__ import annotations

from brokers.deliveries import DeliveryCounter
from workers.limits import DELIVERY_LIMIT_EXCEEDED, DeliveryCap

REQUEST = {"execution_id": "e1", "attempt": 1, "name": "charge", "instance_id": "order-7"}


def _die_inside(cap: DeliveryCap) -> None:
    """A delivery whose process dies mid-run: the context is never left."""
    track = cap.track(REQUEST)
    assert track.__enter__() is None


def test_a_call_is_parked_after_its_worker_died_limit_times() -> None:
    cap = DeliveryCap(DeliveryCounter("memory://"), 2)
    _die_inside(cap)
    _die_inside(cap)
    with cap.track(REQUEST) as parked:
        assert parked is not None and parked.error_type == DELIVERY_LIMIT_EXCEEDED
        assert "'charge'" in parked.message and "'order-7'" in parked.message and "last 2 deliveries" in parked.message


def test_a_finished_run_clears_the_count_and_other_calls_are_counted_apart() -> None:
    cap = DeliveryCap(DeliveryCounter("memory://"), 2)
    _die_inside(cap)
    with cap.track(REQUEST) as parked:  # a death, then a normal run: the count starts over
        assert parked is None
    _die_inside(cap)
    with cap.track({**REQUEST, "attempt": 2}) as parked:  # a retry is another call
        assert parked is None
    with cap.track(REQUEST) as parked:
        assert parked is None


def test_zero_turns_the_cap_off() -> None:
    cap = DeliveryCap(DeliveryCounter("memory://"), 0)
    for _ in range(20):
        _die_inside(cap)
    with cap.track(REQUEST) as parked:
        assert parked is None
