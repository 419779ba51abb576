"""brokers/wakeups.py on Celery's in-memory transport: wake-ups gather into few messages."""

from __future__ import annotations

import uuid

from brokers import app as broker_app
from brokers import queues
from brokers.wakeups import WakeupSender


def drain(app, app_id: str) -> list[list[str]]:
    """The argument lists of the orchestrate messages waiting on the app's workflow queue."""
    found = []
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue(queues.workflow_queue(app_id))
        while True:
            try:
                message = queue.get(timeout=0.2)
            except queue.Empty:
                break
            assert message.headers["task"] == queues.ORCHESTRATE_TASK
            found.append(message.decode()[0])
            message.ack()
        queue.close()
    return found


def test_wake_ups_within_the_linger_share_one_message() -> None:
    app = broker_app.create_app(f"memory://{uuid.uuid4().hex}/", "w")
    sender = WakeupSender(app, linger=0.5)
    for iid in ("a", "b", "a", "c"):
        sender.wake("w", iid)
    sender.close()
    assert drain(app, "w") == [["a", "b", "c"]]


def test_many_wake_ups_are_sent_in_chunks_per_app() -> None:
    app = broker_app.create_app(f"memory://{uuid.uuid4().hex}/", "w")
    sender = WakeupSender(app, linger=0.5, chunk=2)
    for iid in ("a", "b", "c"):
        sender.wake("w", iid)
    sender.wake("other", "x")
    sender.close()
    assert drain(app, "w") == [["a", "b"], ["c"]]
    assert drain(app, "other") == [["x"]]


def test_a_lone_wake_up_leaves_within_the_linger() -> None:
    app = broker_app.create_app(f"memory://{uuid.uuid4().hex}/", "w")
    sender = WakeupSender(app, linger=0.001)
    sender.wake("w", "solo")
    found: list[list[str]] = []
    for _ in range(50):
        found += drain(app, "w")
        if found:
            break
    assert found == [["solo"]]
    sender.close()
