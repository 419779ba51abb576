"""The `ledgerflow` command: process commands and workflow management."""

from __future__ import annotations

import logging
import signal
import threading
import time

import click

from brokers import app as broker_app
from brokers import queues
from brokers.processes import run_beat, run_worker
from ledgerflow import workflow_cli
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
@click.option("--concurrency", type=int, default=None,
              help="Steps run at once (threads); default maxConcurrentWorkflowInvocations, else 4.")
def orchestrator(module: str, concurrency: int) -> None:
    """Run the orchestrator for MODULE's runtime: consumes ledgerflow.<app>.workflows."""
    runtime = load_runtime(module)
    settings = runtime.settings
    celery, service = runtime.build(settings)
    runtime.redrive(service)
    concurrency = concurrency or settings.workflow.max_concurrent_workflow_invocations or 4
    run_worker(celery, [queues.workflow_queue(settings.app_id)], pool="threads", concurrency=concurrency,
               name=f"orchestrator-{settings.app_id}", task_events=settings.task_events)


@main.command()
@click.argument("module")
@click.option("--pool", "pool_name", default=None, help="Serve this named activity pool only.")
@click.option("--concurrency", type=int, default=None,
              help="Activity processes (prefork); default maxConcurrentActivityInvocations, else 2.")
@click.option("--worker-pool", default="prefork", show_default=True, type=click.Choice(["prefork", "threads", "solo"]))
def worker(module: str, pool_name: str | None, concurrency: int, worker_pool: str) -> None:
    """Run activity workers for MODULE's runtime. They need no database."""
    runtime = load_runtime(module)
    settings = runtime.settings
    celery = runtime.build_activity_worker(settings)
    concurrency = concurrency or settings.workflow.max_concurrent_activity_invocations or 2
    run_worker(celery, [queues.activity_queue(settings.app_id, pool_name)], pool=worker_pool,
               concurrency=concurrency, name=f"worker-{settings.app_id}-{pool_name or 'default'}",
               task_events=settings.task_events)


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
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the HTTP API.")
@click.option("--port", default=3500, show_default=True, type=int, help="Port of the HTTP API.")
def dev(module: str, host: str, port: int) -> None:
    """Everything in one process on the embedded default (SQLite + in-memory broker):
    orchestrator, workers, timers and the HTTP API."""
    from ledgerflow.api.server import build_server

    runtime = load_runtime(module)
    settings = runtime.settings
    manager = WorkflowManager(settings)
    server = build_server(manager, host, port)
    runtime.start()
    api_thread = threading.Thread(target=server.run, name="ledgerflow-api", daemon=True)
    api_thread.start()
    while not server.started and api_thread.is_alive():
        time.sleep(0.02)
    if not server.started:
        runtime.shutdown()
        manager.close()
        raise SystemExit(f"the HTTP API could not start on {host}:{port} (is the port in use?); "
                         "pick another with --port")
    click.echo(f"ledgerflow dev: app '{settings.app_id}' running; HTTP API on http://{host}:{port}; "
               "Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        server.should_exit = True
        api_thread.join(15)
        runtime.shutdown()
        manager.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=3500, show_default=True, type=int, help="Port to listen on.")
@click.option("--max-body-bytes", type=int, default=None,
              help="Largest request body; larger ones get 413 (default 4 MiB, or $LEDGERFLOW_API_MAX_BODY_BYTES).")
@click.option("--header-timeout", type=float, default=None,
              help="Seconds a client has to send complete request headers (default 10).")
@click.option("--keep-alive-timeout", type=int, default=None,
              help="Seconds an idle keep-alive connection stays open (default 5).")
def api(host: str, port: int, max_body_bytes: int | None, header_timeout: float | None,
        keep_alive_timeout: int | None) -> None:
    """Serve Dapr's workflow HTTP API (/v1.0/workflows/dapr/...) over the configured database.

    Set LEDGERFLOW_API_TOKEN (or DAPR_API_TOKEN) to require the `dapr-api-token` header."""
    from ledgerflow.api.app import ApiSettings
    from ledgerflow.api.server import serve

    settings = Settings.from_env()
    if settings.embedded_broker:
        logging.getLogger("ledgerflow.api").warning(
            "the broker is in-memory: a separate `ledgerflow dev` picks up started workflows only at its "
            "reconcile tick; run the API inside `ledgerflow dev`, or set LEDGERFLOW_BROKER_URL=redis://...")
    manager = WorkflowManager(settings)
    api_settings = ApiSettings.from_env(max_body_bytes=max_body_bytes, header_timeout=header_timeout,
                                        keep_alive_timeout=keep_alive_timeout)
    try:
        serve(manager, host, port, api_settings)
    finally:
        manager.close()


main.add_command(workflow_cli.workflow, name="workflow")
main.add_command(workflow_cli.workflow, name="wf")


from ledgerflow.listen_cli import listen_command  # noqa: E402  (a command of its own module)

main.add_command(listen_command)

from ledgerflow.certs_cli import certs  # noqa: E402  (history signing identities)
main.add_command(certs)

from ledgerflow.replay_cli import replay_command  # noqa: E402  (pre-deploy replay of histories)
main.add_command(replay_command)

if __name__ == "__main__":
    main()
