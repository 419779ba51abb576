"""Flower shows what it receives as Celery task events: each activity must appear under its
own task name. Like Flower, this turns events on at the running workers by remote control
(they are off by default, to save a broker round trip per task state) and listens to the
same event stream during a real run."""

from __future__ import annotations

import threading

import pytest
from celery import Celery

from tests.fixtures.processes import wait_for
from tests.integration.stacks import Stack, real_stack  # noqa: F401

pytestmark = pytest.mark.integration


def test_each_activity_is_its_own_task_name_in_the_event_stream(real_stack: Stack) -> None:
    app = Celery(broker=real_stack.env["LEDGERFLOW_BROKER_URL"], set_as_current=False)
    seen: set[str] = set()
    conn = app.connection()
    receiver = app.events.Receiver(conn, handlers={
        "task-received": lambda event: seen.add(event.get("name", "")),
        "*": lambda event: None,
    })
    thread = threading.Thread(target=receiver.capture, kwargs={"limit": None, "timeout": None, "wakeup": True},
                              daemon=True)
    thread.start()
    # the processes may still be starting: ask until the orchestrator and the worker both answer
    wait_for(lambda: len(app.control.enable_events(reply=True, timeout=1)) >= 2, 30,
             message="the orchestrator and worker did not answer remote control")
    for name in ("chaining", "fan_out", "compensation"):
        iid = real_stack.client.schedule_new_workflow(name, input="x" if name != "fan_out" else 3)
        real_stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=30)
    receiver.should_stop = True
    conn.release()
    assert {"ledgerflow.activity.step", "ledgerflow.activity.square", "ledgerflow.activity.flaky",
            "ledgerflow.activity.refund", "ledgerflow.orchestrate", "ledgerflow.deliver"} <= seen, seen
