"""The Celery app factory: the one place that configures Celery.

No app is created at import time. Settings follow RELIABILITY.md: late acks, reject on
worker loss, prefetch 1, a visibility timeout above the longest activity, cancel long
tasks when the broker connection is lost, retry the broker forever. Task events are off
unless Flower (or `celery control enable_events`) turns them on.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from brokers import queues, redis_transport, urls

#: kombu's memory transport polls once a second by default: far too slow for a step.
MEMORY_POLLING_INTERVAL = 0.001


def create_app(
    broker_url: str,
    app_id: str,
    *,
    visibility_timeout: int = 3600,
    main: str = "ledgerflow",
    **overrides: Any,
) -> Celery:
    """A Celery app bound to `broker_url`, routing by default to `app_id`'s workflow queue."""
    app = Celery(main, broker=broker_url, set_as_current=False)
    transport_options: dict[str, Any] = {"visibility_timeout": visibility_timeout}
    if urls.is_memory(broker_url):
        transport_options["polling_interval"] = MEMORY_POLLING_INTERVAL
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queues.workflow_queue(app_id),
        task_create_missing_queues=True,
        worker_hijack_root_logger=False,
        # Task events cost a Redis PUBLISH per task state (received, started, succeeded, sent):
        # about a sixth of an orchestrator's CPU (bench/README.md). Off by default; Flower turns
        # them on at the workers by remote control when it starts (`celery control enable_events`).
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
        broker_channel_error_retry=True,
    )
    if urls.uses_own_transport(broker_url):
        # kombu's Redis transport with a fix for a worker exiting when Redis restarts under it
        app.conf.broker_transport = redis_transport.TRANSPORT
    app.conf.update(overrides)
    return app
