"""The `ledgerflow` command: process commands and workflow management."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import datetime

import click

from brokers import app as broker_app
from brokers import queues
from brokers.processes import run_beat, run_worker
from ledgerflow import errors
from ledgerflow.config import Settings
from ledgerflow.loader import load_runtime
from ledgerflow.logs import configure_logging
from ledgerflow.management import WorkflowManager


@click.group()
@click.option("--log-level", default="INFO", show_default=True, help="Python log level.")
def main(log_level: str) -> None:
    """Ledgerflow: durable workflows on Celery (Dapr Workflow compatible)."""
    configure_logging(log_level)


@main.command()
@click.argument("module")
@click.option("--concurrency", default=4, show_default=True, help="Steps run at once (threads).")
def orchestrator(module: str, concurrency: int) -> None:
    """Run the orchestrator for MODULE's runtime: consumes ledgerflow.<app>.workflows."""
    runtime = load_runtime(module)
    settings = runtime.settings
    celery, service = runtime.build(settings)
    runtime.redrive(service)
    run_worker(celery, [queues.workflow_queue(settings.app_id)], pool="threads", concurrency=concurrency,
               name=f"orchestrator-{settings.app_id}")


@main.command()
@click.argument("module")
@click.option("--pool", "pool_name", default=None, help="Serve this named activity pool only.")
@click.option("--concurrency", default=2, show_default=True, help="Activity processes (prefork).")
@click.option("--worker-pool", default="prefork", show_default=True, type=click.Choice(["prefork", "threads", "solo"]))
def worker(module: str, pool_name: str | None, concurrency: int, worker_pool: str) -> None:
    """Run activity workers for MODULE's runtime. They need no database."""
    runtime = load_runtime(module)
    settings = runtime.settings
    celery = broker_app.create_app(settings.broker_url, settings.app_id, visibility_timeout=settings.visibility_timeout)
    from workers.tasks import register_activity_tasks

    register_activity_tasks(celery, runtime.registry)
    run_worker(celery, [queues.activity_queue(settings.app_id, pool_name)], pool=worker_pool,
               concurrency=concurrency, name=f"worker-{settings.app_id}-{pool_name or 'default'}")


@main.command()
@click.option("--app-id", "app_ids", multiple=True, help="Apps to tick (default: LEDGERFLOW_APP_ID).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between ticks.")
def beat(app_ids: tuple[str, ...], interval: float) -> None:
    """Tick durable timers and reconcile, by Celery beat."""
    settings = Settings.from_env()
    celery = broker_app.create_app(settings.broker_url, settings.app_id)
    run_beat(celery, list(app_ids) or [settings.app_id], interval=interval)


@main.command()
@click.argument("module")
def dev(module: str) -> None:
    """Everything in one process on the embedded default (SQLite + in-memory broker)."""
    runtime = load_runtime(module)
    runtime.start()
    click.echo(f"ledgerflow dev: app '{runtime.settings.app_id}' running; Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.shutdown()


@main.group()
def workflow() -> None:
    """Manage workflow instances."""


def _manager() -> WorkflowManager:
    return WorkflowManager(Settings.from_env())


def _fail(exc: Exception) -> None:
    code = getattr(exc, "code", type(exc).__name__)
    click.echo(f"error [{code}]: {exc}", err=True)
    sys.exit(1)


def _json(text: str | None) -> object:
    return None if text is None else json.loads(text)


@workflow.command("run")
@click.argument("name")
@click.option("--input", "input_json", default=None, help="Input as JSON text.")
@click.option("--instance-id", default=None)
@click.option("--start-at", default=None, help="ISO 8601 start time.")
def workflow_run(name: str, input_json: str | None, instance_id: str | None, start_at: str | None) -> None:
    """Start workflow NAME; prints the instance ID."""
    try:
        start = datetime.fromisoformat(start_at) if start_at else None
        if input_json is not None:
            json.loads(input_json)
        click.echo(_manager().schedule(name, instance_id=instance_id, start_at=start, serialized_input=input_json))
    except (ValueError, errors.InstanceActiveError) as exc:
        _fail(exc)


@workflow.command("get")
@click.argument("instance_id")
def workflow_get(instance_id: str) -> None:
    """Print an instance's state as JSON."""
    state = _manager().state(instance_id)
    if state is None:
        _fail(errors.InstanceNotFoundError(instance_id))
    click.echo(json.dumps(state.to_json(), indent=2))


@workflow.command("list")
@click.option("--status", "statuses", multiple=True)
@click.option("--name", default=None)
@click.option("--app-id", default=None)
@click.option("--limit", default=100, show_default=True)
def workflow_list(statuses: tuple[str, ...], name: str | None, app_id: str | None, limit: int) -> None:
    """List instances, newest first."""
    for r in _manager().store.list_instances(app_id=app_id, name=name, statuses=list(statuses) or None, limit=limit):
        click.echo(f"{r.instance_id}\t{r.name}\t{r.status}\t{r.created_at.isoformat()}")


@workflow.command("history")
@click.argument("instance_id")
def workflow_history(instance_id: str) -> None:
    """Print an instance's history, one event per line."""
    for e in _manager().store.history(instance_id):
        click.echo(f"{e.sequence}\t{e.timestamp.isoformat()}\t{e.type}\t{e.payload}")


def _simple(command: str, action: str) -> None:
    @workflow.command(command)
    @click.argument("instance_id")
    def run(instance_id: str) -> None:
        try:
            getattr(_manager(), action)(instance_id)
        except (LookupError, errors.InstanceActiveError) as exc:
            _fail(exc)
        click.echo(f"{command}: {instance_id}")

    run.__doc__ = f"{command.capitalize()} INSTANCE_ID."


for _command, _action in (("suspend", "suspend"), ("resume", "resume"), ("terminate", "terminate"), ("purge", "purge")):
    _simple(_command, _action)


@workflow.command("raise-event")
@click.argument("instance_id")
@click.argument("event_name")
@click.option("--data", default=None, help="Event data as JSON text.")
def workflow_raise_event(instance_id: str, event_name: str, data: str | None) -> None:
    """Raise EVENT_NAME on INSTANCE_ID."""
    try:
        _manager().raise_event(instance_id, event_name, serialized_data=data)
    except (LookupError, ValueError) as exc:
        _fail(exc)
    click.echo(f"raised {event_name} on {instance_id}")


if __name__ == "__main__":
    main()
