"""Running Celery as a foreground process: a worker on given queues, or beat ticking timers."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Callable, Sequence

from celery import Celery, signals

from brokers import queues


def run_worker(app: Celery, worker_queues: Sequence[str], *, pool: str, concurrency: int, name: str,
               loglevel: str | None = None, task_events: bool = False, keep_logging: bool = False,
               on_process_exit: Callable[[], None] | None = None) -> None:
    """Consume `worker_queues` until stopped (SIGTERM: warm shutdown, acks_late keeps work safe).

    `loglevel` defaults to the level of the `ledgerflow` logger (`ledgerflow --log-level`), so
    Celery's per-task "received"/"succeeded" lines (a sizeable share of a no-op task's
    cost) follow it. `keep_logging`: Celery leaves the process's logging as configured (JSON
    lines) instead of installing its own handlers, and prints no banner. `on_process_exit` runs in each pool process
    as it exits (a prefork child ends without atexit hooks: its buffered spans go first)."""
    loglevel = loglevel or _ledgerflow_level()
    if keep_logging:
        keep_process_logging()
    if on_process_exit is not None:
        signals.worker_process_shutdown.connect(lambda **_: on_process_exit(), weak=False)
    app.set_current()
    app.set_default()
    worker = app.Worker(
        queues=list(worker_queues),
        pool_cls=pool,
        concurrency=concurrency,
        hostname=f"{name}-{os.getpid()}@{socket.gethostname()}",
        loglevel=loglevel,
        without_mingle=True,
        without_gossip=True,
        optimization="fair",
        task_events=task_events,  # Flower shows each task (one name per activity) from these events
        quiet=keep_logging,  # no banner on stdout between JSON log lines
    )
    worker.start()


def _ledgerflow_level() -> str:
    level = logging.getLogger("ledgerflow").getEffectiveLevel()
    return logging.getLevelName(level) if level != logging.NOTSET else "INFO"


def keep_process_logging() -> None:
    """Celery configures no logging of its own when a `setup_logging` receiver exists."""
    signals.setup_logging.connect(_logging_kept, weak=False)


def _logging_kept(**_: object) -> None:
    """Logging is the process's own (see `keep_process_logging`)."""


def run_beat(app: Celery, app_ids: Sequence[str], *, interval: float = 1.0, loglevel: str = "INFO",
             keep_logging: bool = False) -> None:
    """Send `ledgerflow.tick` to each app's workflow queue every `interval` seconds.

    Beat only ticks: the tick claims due timer rows in the database, so two beats do no
    harm and a missing beat only delays timers."""
    app.conf.beat_schedule = {
        f"ledgerflow-tick-{app_id}": {
            "task": queues.TICK_TASK,
            "schedule": interval,
            "args": [app_id],
            "options": {"queue": queues.workflow_queue(app_id), "expires": max(interval * 5, 5)},
        }
        for app_id in app_ids
    }
    schedule_file = os.path.join(tempfile.mkdtemp(prefix="ledgerflow-beat-"), "schedule")
    if keep_logging:  # as run_worker's
        keep_process_logging()
    app.Beat(loglevel=loglevel, schedule=schedule_file, max_interval=interval, quiet=keep_logging).run()
