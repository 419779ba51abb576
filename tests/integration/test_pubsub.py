"""Pub/sub listeners: a payment service publishes, a waiting order workflow resumes; bad
messages go to the dead-letter queue with their reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kombu import Connection

import ledgerflow as wf
from brokers.pubsub import dead_letter_queue
from ledgerflow.pubsub import SubscriptionError, Subscriptions, publish_event
from tests.fixtures.processes import wait_for
from tests.integration.stacks import Stack, real_stack  # noqa: F401

pytestmark = pytest.mark.integration
SUBSCRIPTIONS = """
name: orders
subscriptions:
  - topic: payment.received
    event: payment_received
    instance_id: order_id
    data: payment
"""


def _dead_letters(broker_url: str, name: str, count: int, timeout: float = 20) -> list[tuple[dict, dict]]:
    found: list[tuple[dict, dict]] = []
    with Connection(broker_url) as conn:
        queue = conn.SimpleQueue(dead_letter_queue(name))

        def drained() -> bool:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                return len(found) >= count
            found.append((message.payload, dict(message.headers)))
            message.ack()
            return len(found) >= count

        wait_for(drained, timeout, message=f"expected {count} dead letter(s), got {len(found)}")
        queue.close()
    return found


def test_payment_received_resumes_the_waiting_order_and_bad_messages_are_dead_lettered(
        real_stack: Stack, tmp_path: Path) -> None:
    subs = tmp_path / "subs.yaml"
    subs.write_text(SUBSCRIPTIONS)
    listener = real_stack.start_process("listener", "listen", "--subscriptions", str(subs))
    broker = real_stack.env["LEDGERFLOW_BROKER_URL"]
    wait_for(lambda: "ledgerflow listen: queue ledgerflow.listen.orders" in listener.log_text(), 20,
             message="the listener did not start")
    iid = real_stack.client.schedule_new_workflow("awaiting_payment", input="A-1", instance_id="order-A-1")
    real_stack.client.wait_for_workflow_start(iid, timeout_in_seconds=30)

    publish_event("payment.received", {"order_id": iid, "payment": {"amount": 255.0}}, broker_url=broker)
    state = real_stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=30)
    assert json.loads(state.serialized_output) == {"order": "A-1", "paid": 255.0}

    publish_event("payment.received", {"order_id": "no-such-order", "payment": {"amount": 1}}, broker_url=broker)
    publish_event("payment.received", {"payment": {"amount": 2}}, broker_url=broker)
    publish_event("payment.received", ["not", "an", "object"], broker_url=broker)
    letters = _dead_letters(broker, "orders", 3)
    reasons = sorted(h["x-dead-letter-reason"] for _, h in letters)
    assert reasons == [
        "malformed: expected a JSON object, got list",
        "no instance ID at 'order_id' in the payment.received message",
        "workflow instance 'no-such-order' does not exist (event 'payment_received' from payment.received)",
    ]
    assert all(h["x-original-routing-key"] == "payment.received" for _, h in letters)
    assert {"order_id": "no-such-order", "payment": {"amount": 1}} in [body for body, _ in letters]


def test_subscription_files_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("subscriptions:\n  - topic: a.b\n    event: e\n")
    with pytest.raises(SubscriptionError, match="subscription #0 lacks instance_id"):
        Subscriptions.load(bad)
    bad.write_text("name: x\n")
    with pytest.raises(SubscriptionError, match="no subscriptions"):
        Subscriptions.load(bad)
    good = tmp_path / "good.yaml"
    good.write_text(SUBSCRIPTIONS)
    subs = Subscriptions.load(good)
    assert subs.name == "orders" and subs.items[0].data == "payment"


def test_publishing_a_value_that_is_not_json_fails_at_once() -> None:
    with pytest.raises(TypeError, match="set"):
        publish_event("x.y", {1, 2}, broker_url="memory://localhost/")
