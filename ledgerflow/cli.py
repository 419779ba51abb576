"""The `ledgerflow` command: process commands and workflow management."""

from __future__ import annotations

import signal
import threading
import time

from typing import Any

import click

from brokers import app as broker_app
from brokers import queues
from brokers.processes import run_beat, run_worker
from ledgerflow import errors, workflow_cli
from ledgerflow.cli_help import examples
from ledgerflow.config import Settings
from ledgerflow.errors import SetupError
from ledgerflow.loader import load_runtime
from ledgerflow.logs import FORMATS, configure_logging
from ledgerflow.management import WorkflowManager
from persistence.errors import PersistenceError
from telemetry import metrics, otlp_metrics, tracing


class _OneLineErrors(click.Group):
    """Every command's failure is one `Error:` line on stderr and exit code 1; the traceback
    only with --debug or LEDGERFLOW_LOG_LEVEL=DEBUG."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.find_root().meta.get(_DEBUG):
                raise
            raise click.ClickException(error_line(exc)) from None


_DEBUG = "ledgerflow.debug"
#: Errors whose message already says what happened and what to do.
_EXPLAINED = (SetupError, PersistenceError, ValueError, errors.InstanceNotFoundError, errors.InstanceActiveError,
             TimeoutError)


def error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, _EXPLAINED):
        return text
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


@click.group(cls=_OneLineErrors, epilog=examples("ledgerflow dev examples.order_app",
                                                  "ledgerflow --debug wf list"))
@click.version_option(package_name="ledgerflow", prog_name="ledgerflow", message="%(prog)s %(version)s")
@click.option("--log-level", default="INFO", show_default=True, envvar="LEDGERFLOW_LOG_LEVEL",
              help="Python log level ($LEDGERFLOW_LOG_LEVEL); DEBUG also shows tracebacks.")
@click.option("--log-format", default="text", show_default=True, envvar="LEDGERFLOW_LOG_FORMAT",
              type=click.Choice(FORMATS, case_sensitive=False),
              help="`json`: one JSON object per line ($LEDGERFLOW_LOG_FORMAT).")
@click.option("--debug", is_flag=True, help="Log at DEBUG and show the traceback of an error.")
@click.pass_context
def main(ctx: click.Context, log_level: str, log_format: str, debug: bool) -> None:
    """Ledgerflow: durable workflows on Celery (Dapr Workflow compatible)."""
    level = "DEBUG" if debug else log_level
    ctx.meta[_DEBUG] = level.upper() == "DEBUG"
    ctx.meta[_JSON_LOGS] = log_format.lower() == "json"
    configure_logging(level, log_format.lower())


_JSON_LOGS = "ledgerflow.json_logs"


def _json_logs() -> bool:
    return bool(click.get_current_context().find_root().meta.get(_JSON_LOGS))


def metrics_options(command: Any) -> Any:
    """`--metrics-port` and `--metrics-host`: Prometheus `GET /metrics` of this process."""
    command = click.option("--metrics-host", default="127.0.0.1", show_default=True,
                           help="Address of the metrics endpoint (0.0.0.0 to let Prometheus in from outside).")(command)
    return click.option("--metrics-port", type=int, default=None,
                        help="Serve Prometheus metrics on this port (GET /metrics).")(command)


def _serve_metrics(port: int | None, host: str = "127.0.0.1", *, multiprocess: bool = False) -> None:
    """Serve `GET /metrics` on `port` (None: not), and push the metrics over OTLP when the
    OTEL_* variables ask for it. `multiprocess`: a prefork worker, whose children each count."""
    push = otlp_metrics.wanted()
    if multiprocess and (port is not None or push):  # the children count in files this process reads
        metrics.use_multiprocess()
    if port is not None:
        metrics.serve(port, host)
    if push:
        otlp_metrics.start()


@main.command(epilog=examples("ledgerflow orchestrator examples.order_app",
                             "ledgerflow orchestrator app.py:runtime --concurrency 8"))
@click.argument("module")
@click.option("--concurrency", type=int, default=None,
              help="Steps run at once (threads); default maxConcurrentWorkflowInvocations, else 4.")
@metrics_options
def orchestrator(module: str, concurrency: int, metrics_port: int | None, metrics_host: str) -> None:
    """Run the orchestrator for MODULE's runtime: consumes ledgerflow.<app>.workflows."""
    runtime = load_runtime(module)
    settings = runtime.settings
    celery, service = runtime.build(settings)
    _serve_metrics(metrics_port, metrics_host)
    runtime.redrive(service)
    concurrency = concurrency or settings.workflow.max_concurrent_workflow_invocations or 4
    run_worker(celery, [queues.workflow_queue(settings.app_id)], pool="threads", concurrency=concurrency,
               name=f"orchestrator-{settings.app_id}", task_events=settings.task_events, keep_logging=_json_logs())


@main.command(epilog=examples("ledgerflow worker examples.order_app --concurrency 2",
                             "ledgerflow worker examples.order_app --pool media --concurrency 4"))
@click.argument("module")
@click.option("--pool", "pool_name", default=None, help="Serve this named activity pool only.")
@click.option("--concurrency", type=int, default=None,
              help="Activity processes (prefork); default maxConcurrentActivityInvocations, else 2.")
@click.option("--worker-pool", default="prefork", show_default=True, type=click.Choice(["prefork", "threads", "solo"]))
@metrics_options
def worker(module: str, pool_name: str | None, concurrency: int, worker_pool: str, metrics_port: int | None,
           metrics_host: str) -> None:
    """Run activity workers for MODULE's runtime. They need no database."""
    runtime = load_runtime(module)
    settings = runtime.settings
    celery = runtime.build_activity_worker(settings)
    _serve_metrics(metrics_port, metrics_host, multiprocess=worker_pool == "prefork")
    concurrency = concurrency or settings.workflow.max_concurrent_activity_invocations or 2
    run_worker(celery, [queues.activity_queue(settings.app_id, pool_name)], pool=worker_pool,
               concurrency=concurrency, name=f"worker-{settings.app_id}-{pool_name or 'default'}",
               task_events=settings.task_events, keep_logging=_json_logs(),
               on_process_exit=tracing.flush if tracing.wanted() else None)


@main.command(epilog=examples("ledgerflow beat", "ledgerflow beat --app-id orders --app-id billing --interval 0.5"))
@click.option("--app-id", "app_ids", multiple=True, help="Apps to tick (default: LEDGERFLOW_APP_ID).")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between ticks.")
@metrics_options
def beat(app_ids: tuple[str, ...], interval: float, metrics_port: int | None, metrics_host: str) -> None:
    """Tick durable timers and reconcile, by Celery beat."""
    settings = Settings.from_env()
    celery = broker_app.create_app(settings.broker_url, settings.app_id)
    _serve_metrics(metrics_port, metrics_host)
    run_beat(celery, list(app_ids) or [settings.app_id], interval=interval, keep_logging=_json_logs())


@main.command(epilog=examples("ledgerflow dev examples.order_app", "ledgerflow dev app.py --port 3600"))
@click.argument("module")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the HTTP API.")
@click.option("--port", default=3500, show_default=True, type=int, help="Port of the HTTP API.")
@click.option("--grpc-port", default=50001, show_default=True, type=int,
              help="Port of Dapr's workflow gRPC API (DAPR_GRPC_PORT for Dapr's SDKs); 0 turns it off.")
def dev(module: str, host: str, port: int, grpc_port: int) -> None:
    """Everything in one process on the embedded default (SQLite + in-memory broker):
    orchestrator, workers, timers, the HTTP API and the gRPC API."""
    _run_in_process(load_runtime(module), host, port, grpc_port, "ledgerflow dev")


@main.command(epilog=examples("ledgerflow sidecar --app-id orders",
                             "LEDGERFLOW_BROKER_URL=redis://localhost:6379/0 ledgerflow sidecar --app-id orders "
                             "--grpc-port 50002 --app-timeout 60"))
@click.option("--app-id", required=True, help="The app whose workflows and activities the connected SDKs run.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the HTTP and gRPC APIs.")
@click.option("--port", default=3500, show_default=True, type=int, help="Port of the HTTP API (DAPR_HTTP_PORT).")
@click.option("--grpc-port", default=50001, show_default=True, type=click.IntRange(min=1),
              help="Port of Dapr's workflow gRPC API, which the app's SDK connects to (DAPR_GRPC_PORT).")
@click.option("--app-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for the app's answer to a work item before sending it again.")
def sidecar(app_id: str, host: str, port: int, grpc_port: int, app_timeout: float) -> None:
    """Dapr's sidecar for workflow apps in any language: an unmodified Dapr app (Python, Go,
    Java, .NET, JavaScript) started with DAPR_GRPC_PORT set to --grpc-port connects its SDK here
    and runs durably on the configured database and broker (LEDGERFLOW_DATABASE_URL,
    LEDGERFLOW_BROKER_URL). Several sidecars may serve one app."""
    from ledgerflow.sidecar.runtime import SidecarRuntime
    from ledgerflow.sidecar.service import SidecarService

    runtime = SidecarRuntime(app_id, app_timeout)
    _run_in_process(runtime, host, port, grpc_port, "ledgerflow sidecar",
                    servicer=lambda manager: SidecarService(manager, runtime.work))


def _run_in_process(runtime: Any, host: str, port: int, grpc_port: int, what: str, servicer: Any = None) -> None:
    """Run `runtime` with the HTTP and gRPC APIs in this process until SIGTERM or Ctrl-C."""
    from ledgerflow.api.server import build_server

    settings = runtime.settings
    manager = WorkflowManager(settings)
    server = build_server(manager, host, port)
    _serve_metrics(None)  # GET /metrics is the API's; OTLP when asked
    runtime.start()
    try:
        grpc_server = _start_grpc(manager, host, grpc_port, servicer=servicer(manager) if servicer else None)
    except BaseException:
        runtime.shutdown()
        manager.close()
        raise
    api_thread = threading.Thread(target=server.run, name="ledgerflow-api", daemon=True)
    api_thread.start()
    while not server.started and api_thread.is_alive():
        time.sleep(0.02)
    if not server.started:
        _stop_grpc(grpc_server)
        runtime.shutdown()
        manager.close()
        raise SetupError(f"the HTTP API could not start on {host}:{port} (is the port in use?); "
                         "pick another with --port")
    grpc_note = f"; gRPC API on {host}:{grpc_port}" if grpc_server is not None else ""
    click.echo(f"{what}: app '{settings.app_id}' running; HTTP API on http://{host}:{port}{grpc_note}; "
               f"dashboard on http://{host}:{port}/ui/; Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        server.handle_exit(signal.SIGTERM, None)
        api_thread.join(15)
        _stop_grpc(grpc_server)
        runtime.shutdown()
        manager.close()


@main.command(epilog=examples("ledgerflow api",
                             "LEDGERFLOW_API_TOKEN=s3cret ledgerflow api --host 0.0.0.0 --port 3500"))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=3500, show_default=True, type=int, help="Port to listen on.")
@click.option("--max-body-bytes", type=int, default=None,
              help="Largest request body; larger ones get 413 (default 4 MiB, or $LEDGERFLOW_API_MAX_BODY_BYTES).")
@click.option("--header-timeout", type=float, default=None,
              help="Seconds a client has to send complete request headers (default 10).")
@click.option("--keep-alive-timeout", type=int, default=None,
              help="Seconds an idle keep-alive connection stays open (default 5).")
@click.option("--grpc-port", default=50001, show_default=True, type=int,
              help="Port of Dapr's workflow gRPC API (DAPR_GRPC_PORT for Dapr's SDKs); 0 turns it off.")
def api(host: str, port: int, max_body_bytes: int | None, header_timeout: float | None,
        keep_alive_timeout: int | None, grpc_port: int) -> None:
    """Serve Dapr's workflow HTTP API (/v1.0/workflows/dapr/...) and gRPC API over the
    configured database.

    Set LEDGERFLOW_API_TOKEN (or DAPR_API_TOKEN) to require the `dapr-api-token` header
    (gRPC: metadata)."""
    from ledgerflow.api.app import ApiSettings
    from ledgerflow.api.server import check_exposure, serve

    settings = Settings.from_env()
    settings.require_database()
    manager = WorkflowManager(settings)
    _serve_metrics(None)  # GET /metrics is the API's; OTLP when asked
    api_settings = ApiSettings.from_env(max_body_bytes=max_body_bytes, header_timeout=header_timeout,
                                        keep_alive_timeout=keep_alive_timeout)
    grpc_server = None
    try:
        check_exposure(host, port, api_settings)  # the HTTP API's refusal first, as before gRPC
        grpc_server = _start_grpc(manager, host, grpc_port, api_settings)
        serve(manager, host, port, api_settings)
    finally:
        _stop_grpc(grpc_server)
        manager.close()


def _start_grpc(manager: WorkflowManager, host: str, port: int, settings: Any = None, servicer: Any = None) -> Any:
    """The gRPC API on host:port (None when `port` is 0)."""
    if not port:
        return None
    from ledgerflow.grpc_api import server as grpc_api

    return grpc_api.start(manager, host, port, settings, servicer)


def _stop_grpc(server: Any) -> None:
    if server is not None:
        server.stop(grace=5).wait(10)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
              epilog=examples("ledgerflow flower", "ledgerflow flower --port 5566 --address 0.0.0.0 --basic-auth=u:p"))
@click.option("--port", default=5555, show_default=True, type=int, help="Port of Flower's web UI and API.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address Flower listens on.")
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(port: int, address: str, flower_args: tuple[str, ...]) -> None:
    """Celery's monitor, Flower, on the configured broker: every activity shows as its own
    task, ledgerflow.activity.<name>. Needs `pip install 'ledgerflow[flower]'`; further
    options go to Flower (e.g. --basic-auth; FLOWER_UNAUTHENTICATED_API=true opens its API)."""
    try:
        import flower as _flower  # noqa: F401  (only to tell a missing extra apart)
    except ImportError:
        raise SetupError("Flower is not installed: pip install 'ledgerflow[flower]'") from None
    settings = Settings.from_env()
    celery = broker_app.create_app(settings.broker_url, settings.app_id)
    celery.start(argv=["flower", f"--port={port}", f"--address={address}", *flower_args])


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
