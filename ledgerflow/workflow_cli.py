"""`ledgerflow workflow` (alias `wf`): Dapr's `dapr workflow` commands, on WorkflowManager.

The CLI reads the same configuration as the runtime (LEDGERFLOW_DATABASE_URL,
LEDGERFLOW_BROKER_URL, LEDGERFLOW_APP_ID), so it works against `ledgerflow dev` and against
the real stack. `-a/--app-id` names the app whose instances a command acts on (default:
LEDGERFLOW_APP_ID). Results go to stdout; errors go to stderr with exit code 1.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import click
import yaml

from ledgerflow import errors
from ledgerflow.cli_help import examples
from ledgerflow.config import Settings
from ledgerflow.history import HistoryEntry, human_age, human_elapsed, rfc3339, truncate
from ledgerflow.management import InstanceSummary, WorkflowManager
from ledgerflow.views import state_json, summary_json
from persistence.errors import StoreUnavailable
from orchestrator.engine.status import COMPLETED, FAILED, PENDING, STATUSES, SUSPENDED, TERMINAL_STATUSES, TERMINATED

F = TypeVar("F", bound=Callable[..., Any])

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
CUSTOM_STATUS_WIDTH = 40


class CliError(click.ClickException):
    """Printed to stderr as `Error: <message>`, exit code 1."""


def app_id_option(fn: F) -> F:
    return click.option("-a", "--app-id", default=None, metavar="APP",
                        help="The app whose instances to act on (default: $LEDGERFLOW_APP_ID).")(fn)


def managed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give the command a WorkflowManager for its app; turn known errors into CLI errors."""

    @functools.wraps(fn)
    def run(*args: Any, app_id: str | None, **kwargs: Any) -> Any:
        settings = Settings.from_env(app_id=app_id)
        settings.require_database()
        manager = WorkflowManager(settings)
        try:
            return fn(manager, settings.app_id, *args, **kwargs)
        except errors.InstanceNotFoundError as exc:
            raise CliError(not_found_message(exc.instance_id, settings.app_id)) from None
        except StoreUnavailable as exc:
            raise CliError(str(exc)) from None
        except (ValueError, errors.InstanceActiveError) as exc:
            raise CliError(str(exc)) from None
        finally:
            manager.close()

    return run


def not_found_message(instance_id: str, app: str) -> str:
    return (f"unable to find workflow with the provided instance ID: {instance_id} (app '{app}'); check the ID "
            f"with `ledgerflow workflow list -a {app}`, or pass the owning app with -a")


@click.group("workflow", epilog=examples("ledgerflow wf run process_order -i order-1 -x '{\"id\": \"A-7\"}'",
                                        "ledgerflow wf wait order-1 --timeout 30s"))
def workflow() -> None:
    """Manage workflow instances (like `dapr workflow`)."""


# -- run ------------------------------------------------------------------------------------


@workflow.command("run", epilog=examples("ledgerflow wf run process_order -i order-1 -x '{\"id\": \"A-7\"}'",
                                         "ledgerflow wf run nightly_report -s 1h30m"))
@click.argument("name")
@click.option("-i", "--instance-id", default=None, help="Instance ID (default: a new UUID).")
@click.option("-x", "--input", "input_json", default=None, metavar="JSON", help="Input as JSON text.")
@click.option("-s", "--start-time", default=None, metavar="TIME",
              help="Start at an RFC 3339 time (2025-01-02T15:04:05Z) or after a duration (10s, 1h30m).")
@app_id_option
@managed
def run_command(manager: WorkflowManager, app: str, name: str, instance_id: str | None, input_json: str | None,
                start_time: str | None) -> None:
    """Start workflow NAME."""
    start = parse_start_time(start_time) if start_time else None
    serialized = parse_json(input_json, "-x/--input") if input_json is not None else None
    served = start is not None or manager.served(app)
    iid = manager.schedule(name, instance_id=instance_id, start_at=start, serialized_input=serialized, app_id=app)
    click.echo(f"Workflow instance started successfully: {iid}")
    if not served and not _leaves_pending(manager, iid):
        click.echo(f"Warning: no runtime has served app '{app}' in this database ({manager.store.url}) yet; "
                   f"'{iid}' stays PENDING until one does: run `ledgerflow dev MODULE` in this directory, or "
                   "`ledgerflow orchestrator MODULE` with the same LEDGERFLOW_DATABASE_URL", err=True)


def _leaves_pending(manager: WorkflowManager, instance_id: str, within: float = 0.5) -> bool:
    """Whether a runtime picks the new instance up at once (one may have just started)."""
    try:
        manager.wait(instance_id, lambda s: s.runtime_status.name != PENDING, within, False, "leave PENDING")
    except TimeoutError:
        return False
    return True


# -- list -----------------------------------------------------------------------------------


@workflow.command("list", epilog=examples("ledgerflow wf list -s RUNNING,SUSPENDED -m 1h",
                                          "ledgerflow wf list -w process_order -o wide"))
@click.option("-w", "--filter-name", default=None, help="Only workflows with this name.")
@click.option("-s", "--filter-status", "statuses", multiple=True, metavar="STATUS",
              help="Only this status (repeat, or comma-separate): " + ", ".join(sorted(STATUSES)) + ".")
@click.option("-m", "--filter-max-age", default=None, metavar="AGE",
              help="Only workflows created within AGE (300ms, 1.5h, 2h45m) or since a time (2025-01-02T15:04:05Z).")
@click.option("-o", "--output", "fmt", default="short", show_default=True,
              type=click.Choice(["short", "wide", "json", "yaml", "ids"]))
@app_id_option
@managed
def list_command(manager: WorkflowManager, app: str, filter_name: str | None, statuses: tuple[str, ...],
                 filter_max_age: str | None, fmt: str) -> None:
    """List workflow instances, oldest first."""
    wanted = [s for value in statuses for s in value.split(",") if s.strip()] or None
    after = parse_since(filter_max_age, "-m/--filter-max-age") if filter_max_age else None
    rows = all_instances(manager, app_id=app, name=filter_name, statuses=wanted, created_after=after)
    now = datetime.now(timezone.utc)
    if fmt == "ids":
        for r in rows:
            click.echo(r.state.instance_id)
    elif fmt in ("json", "yaml"):
        emit([{**summary_json(r), "age": human_age(now - r.state.created_at)} for r in rows], fmt)
    elif fmt == "short":
        table(["NAME", "ID", "STATUS", "CUSTOM STATUS", "AGE"],
              [[r.state.name, r.state.instance_id, r.state.runtime_status.name, _custom(r),
                human_age(now - r.state.created_at)] for r in rows])
    else:
        table(["NAME", "ID", "APP ID", "STATUS", "CUSTOM STATUS", "CREATED", "LAST UPDATE", "AGE", "FAILURE"],
              [[r.state.name, r.state.instance_id, r.app_id, r.state.runtime_status.name, _custom(r),
                rfc3339(r.state.created_at), rfc3339(r.state.last_updated_at), human_age(now - r.state.created_at),
                truncate(r.state.failure_details.message if r.state.failure_details else "", 60)] for r in rows])


def all_instances(manager: WorkflowManager, **filters: Any) -> list[InstanceSummary]:
    rows: list[InstanceSummary] = []
    while True:
        page = manager.list_instances(limit=1000, offset=len(rows), **filters)
        rows.extend(page)
        if len(page) < 1000:
            return rows


def _custom(row: InstanceSummary) -> str:
    return truncate(row.state.serialized_custom_status, CUSTOM_STATUS_WIDTH)


# -- get and history ------------------------------------------------------------------------


@workflow.command("get", epilog=examples("ledgerflow wf get order-1", "ledgerflow wf get order-1:0001 -o yaml"))
@click.argument("instance_id")
@click.option("-o", "--output", "fmt", default="json", show_default=True, type=click.Choice(["json", "yaml"]))
@app_id_option
@managed
def get_command(manager: WorkflowManager, app: str, instance_id: str, fmt: str) -> None:
    """Show one instance (the HTTP API's GET shape; a suspended one adds `suspendReason`)."""
    state = manager.state(_id(instance_id), app_id=app)
    if state is None:
        raise errors.InstanceNotFoundError(instance_id)
    shown = state_json(state)
    reason = manager.suspend_reason(instance_id) if state.runtime_status.name == SUSPENDED else None
    if reason:
        shown["suspendReason"] = reason
    emit(shown, fmt)


# -- wait -----------------------------------------------------------------------------------

#: `wf wait`'s exit code by final status (1 stays the code of every error).
WAIT_EXIT_CODES = {COMPLETED: 0, FAILED: 2, TERMINATED: 3}
WAIT_TIMED_OUT = 124  # as timeout(1)


@workflow.command("wait", epilog=examples("ledgerflow wf wait order-1",
                                          "ledgerflow wf wait order-1 --timeout 30s && echo done"))
@click.argument("instance_id")
@click.option("-t", "--timeout", "timeout_text", default="0", show_default=True, metavar="DURATION",
              help="Give up after this long (30s, 5m, or seconds); 0 waits forever.")
@app_id_option
@managed
def wait_command(manager: WorkflowManager, app: str, instance_id: str, timeout_text: str) -> None:
    """Wait until an instance finishes; the exit code tells how: 0 COMPLETED, 2 FAILED,
    3 TERMINATED, 124 still running at the timeout (1: an error, e.g. no such instance)."""
    timeout = parse_timeout(timeout_text)
    if manager.state(_id(instance_id), app_id=app, fetch_payloads=False) is None:
        raise errors.InstanceNotFoundError(instance_id)
    try:
        state = manager.wait(instance_id, lambda s: s.runtime_status.name in TERMINAL_STATUSES, timeout, True,
                             "complete")
    except TimeoutError:
        now = manager.state(instance_id, fetch_payloads=False)
        click.echo(f"Error: workflow '{instance_id}' is still {now.runtime_status.name if now else PENDING} "
                   f"after {timeout_text}; wait longer with --timeout", err=True)
        sys.exit(WAIT_TIMED_OUT)
    assert state is not None
    status = state.runtime_status.name
    failure = state.failure_details
    click.echo(f"Workflow '{instance_id}' {status}" + (f": {failure.error_type}: {failure.message}" if failure else ""))
    sys.exit(WAIT_EXIT_CODES[status])


def parse_timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        delta = parse_duration(text)
        if delta is None:
            raise CliError(f"--timeout '{text}' is neither a duration (30s, 5m) nor a number of seconds") from None
        seconds = delta.total_seconds()
    if seconds < 0:
        raise CliError(f"--timeout '{text}' is negative; pass 0 to wait forever")
    return seconds


@workflow.command("history", epilog=examples("ledgerflow wf history order-1", "ledgerflow wf history order-1 -o wide"))
@click.argument("instance_id")
@click.option("-o", "--output", "fmt", default="short", show_default=True,
              type=click.Choice(["short", "wide", "json", "yaml"]))
@app_id_option
@managed
def history_command(manager: WorkflowManager, app: str, instance_id: str, fmt: str) -> None:
    """Show an instance's history; ELAPSED is the time since the previous event."""
    entries = manager.history(instance_id, app_id=app)
    if fmt in ("json", "yaml"):
        emit([e.to_json() for e in entries], fmt)
    elif fmt == "short":
        table(["TYPE", "NAME", "EVENTID", "ELAPSED", "STATUS", "DETAILS"],
              [[e.type, e.name, e.event_id, human_elapsed(e.elapsed), e.status, truncate(e.details, 60)]
               for e in entries])
    else:
        table(["SEQ", "TIMESTAMP", "TYPE", "NAME", "EVENTID", "ELAPSED", "STATUS", "DETAILS"],
              [[e.sequence, rfc3339(e.timestamp), e.type, e.name, e.event_id, human_elapsed(e.elapsed), e.status,
                _one_line(e)] for e in entries])


def _one_line(entry: HistoryEntry) -> str:
    return " ".join((entry.details or "").split())


# -- suspend, resume, terminate, raise-event ------------------------------------------------


@workflow.command("suspend", epilog=examples("ledgerflow wf suspend order-1 -r 'checking stock'"))
@click.argument("instance_id")
@click.option("-r", "--reason", default=None, help="Why (recorded in the history).")
@app_id_option
@managed
def suspend_command(manager: WorkflowManager, app: str, instance_id: str, reason: str | None) -> None:
    """Suspend a running instance."""
    unchanged = manager.suspend(_id(instance_id), reason, app_id=app)
    click.echo(_unchanged(instance_id, unchanged) if unchanged else f"Workflow '{instance_id}' suspended successfully")


@workflow.command("resume", epilog=examples("ledgerflow wf resume order-1 -r 'stock confirmed'"))
@click.argument("instance_id")
@click.option("-r", "--reason", default=None, help="Why (recorded in the history).")
@app_id_option
@managed
def resume_command(manager: WorkflowManager, app: str, instance_id: str, reason: str | None) -> None:
    """Resume a suspended instance."""
    unchanged = manager.resume(_id(instance_id), reason, app_id=app)
    click.echo(_unchanged(instance_id, unchanged) if unchanged else f"Workflow '{instance_id}' resumed successfully")


@workflow.command("terminate", epilog=examples("ledgerflow wf terminate order-1 -o '\"cancelled by ops\"'"))
@click.argument("instance_id")
@click.option("-o", "--output", "output_json", default=None, metavar="JSON", help="Output to record, as JSON text.")
@app_id_option
@managed
def terminate_command(manager: WorkflowManager, app: str, instance_id: str, output_json: str | None) -> None:
    """Terminate an instance and its child workflows."""
    serialized = parse_json(output_json, "-o/--output") if output_json is not None else None
    unchanged = manager.terminate(_id(instance_id), serialized_output=serialized, app_id=app)
    click.echo(_unchanged(instance_id, unchanged) if unchanged else f"Workflow '{instance_id}' terminated successfully")


@workflow.command("raise-event", epilog=examples("ledgerflow wf raise-event order-1/approval -x '{\"ok\": true}'"))
@click.argument("target", metavar="ID/EVENT")
@click.option("-x", "--input", "--data", "data_json", default=None, metavar="JSON", help="Event data as JSON text.")
@app_id_option
@managed
def raise_event_command(manager: WorkflowManager, app: str, target: str, data_json: str | None) -> None:
    """Raise EVENT on instance ID (written ID/EVENT)."""
    instance_id, slash, event = target.partition("/")
    if not slash or not instance_id or not event:
        raise CliError(f"'{target}' is not ID/EVENT; write the instance ID and the event name with a slash, "
                       "e.g. `ledgerflow workflow raise-event order-1/approval -x '{\"ok\": true}'`")
    serialized = parse_json(data_json, "-x/--input") if data_json is not None else None
    unchanged = manager.raise_event(_id(instance_id), event, serialized_data=serialized, app_id=app)
    click.echo(_unchanged(instance_id, unchanged, f"event '{event}' was not delivered") if unchanged
               else f"Workflow '{instance_id}' raised event '{event}' successfully")


def _unchanged(instance_id: str, status: str, note: str = "") -> str:
    """A signal the instance's status leaves without effect: exit code 0, as Dapr's CLI."""
    return f"Workflow '{instance_id}' is {status}; nothing was changed" + (f" ({note})" if note else "")


# -- purge ----------------------------------------------------------------------------------


@workflow.command("purge", epilog=examples("ledgerflow wf purge order-1 order-2",
                                           "ledgerflow wf purge --all-older-than 720h --all-filter-status FAILED"))
@click.argument("instance_ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "purge_all", is_flag=True, help="Purge every finished instance of the app.")
@click.option("--all-older-than", default=None, metavar="AGE",
              help="Purge finished instances created more than AGE ago (720h) or before a time (RFC 3339).")
@click.option("--all-filter-status", "statuses", multiple=True, metavar="STATUS",
              help="With --all/--all-older-than: only instances in this status (repeatable).")
@click.option("--force", is_flag=True,
              help="Also purge unfinished instances: they are marked TERMINATED in the database first, "
                   "without running any workflow code. Use only for instances nothing will run again.")
@app_id_option
@managed
def purge_command(manager: WorkflowManager, app: str, instance_ids: tuple[str, ...], purge_all: bool,
                  all_older_than: str | None, statuses: tuple[str, ...], force: bool) -> None:
    """Delete instances and their history (finished ones only, unless --force)."""
    bulk = purge_all or all_older_than is not None
    if instance_ids and bulk:
        raise CliError("give instance IDs or --all/--all-older-than, not both")
    if not instance_ids and not bulk:
        raise CliError("name the instances to purge, or pass --all or --all-older-than 720h")
    if statuses and not bulk:
        raise CliError("--all-filter-status needs --all or --all-older-than")
    targets = list(instance_ids) if instance_ids else _bulk_targets(manager, app, all_older_than, statuses, force)
    if bulk and not targets:
        click.echo("No workflow instances to purge")
        return
    failed = 0
    for instance_id in targets:
        try:
            manager.purge(_id(instance_id), force=force, app_id=app)
        except errors.InstanceActiveError as exc:
            failed += 1
            click.echo(f"Error: {exc}; or pass --force", err=True)
            continue
        except errors.InstanceNotFoundError:
            failed += 1
            click.echo(f"Error: {not_found_message(instance_id, app)}", err=True)
            continue
        except ValueError as exc:
            failed += 1
            click.echo(f"Error: {exc}", err=True)
            continue
        click.echo(f"Workflow '{instance_id}' purged successfully")
    if failed:
        sys.exit(1)


def _bulk_targets(manager: WorkflowManager, app: str, older_than: str | None, statuses: Sequence[str],
                  force: bool) -> list[str]:
    wanted = [s.strip().upper() for value in statuses for s in value.split(",") if s.strip()]
    for s in wanted:
        if s not in STATUSES:
            raise CliError(f"unknown status '{s}'; use one of {', '.join(sorted(STATUSES))}")
    if not force:
        bad = [s for s in wanted if s not in TERMINAL_STATUSES]
        if bad:
            raise CliError(f"only finished instances can be purged ({', '.join(sorted(TERMINAL_STATUSES))}); "
                           f"{', '.join(bad)} needs --force")
    chosen = wanted or (sorted(STATUSES) if force else sorted(TERMINAL_STATUSES))
    before = parse_since(older_than, "--all-older-than") if older_than else None
    return manager.purge_selection(app_id=app, statuses=chosen, created_before=before)


@workflow.command("rerun", epilog=examples("ledgerflow wf rerun order-1 --event-id 1",
                                           "ledgerflow wf rerun order-1 -e 0 --new-instance-id order-1b -x '\"A-8\"'"))
@click.argument("instance_id")
@click.option("-e", "--event-id", type=click.IntRange(min=0), required=True,
              help="Rerun from this event ID (an activity call, timer or child workflow; see `wf history`).")
@click.option("--new-instance-id", default=None, metavar="ID", help="The new instance's ID (default: a new UUID).")
@click.option("-x", "--input", "input_json", default=None, metavar="JSON",
              help="The new instance's input, as JSON text (default: the old input).")
@app_id_option
@managed
def rerun_command(manager: WorkflowManager, app: str, instance_id: str, event_id: int,
                  new_instance_id: str | None, input_json: str | None) -> None:
    """Rerun a finished instance from an event of its history, as a new instance (like `dapr workflow rerun`):
    the history up to that event is kept, the rest runs again."""
    serialized = parse_json(input_json, "-x/--input") if input_json is not None else None
    new_id = manager.rerun(_id(instance_id), event_id, new_instance_id=new_instance_id, serialized_input=serialized,
                           overwrite_input=input_json is not None, app_id=app)
    click.echo(f"Workflow instance '{instance_id}' rerun from event {event_id} as: {new_id}")


# -- parsing and printing -------------------------------------------------------------------


def _id(instance_id: str) -> str:
    return errors.validate_instance_id(instance_id)


def parse_json(text: str, flag: str) -> str:
    try:
        json.loads(text)
    except ValueError as exc:
        raise CliError(f"{flag} is not valid JSON ({exc}); pass JSON text, e.g. '{{\"key\": \"value\"}}' "
                       "or '\"text\"' (with the quotes)") from None
    return text


def parse_duration(text: str) -> timedelta | None:
    """Go's duration syntax (`300ms`, `1.5h`, `2h45m`), plus `d` for days; None if not one."""
    text = text.strip()
    if not text or _DURATION_PART.sub("", text) != "":
        return None
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text)))


def parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def parse_start_time(text: str) -> datetime:
    delta = parse_duration(text)
    if delta is not None:
        return datetime.now(timezone.utc) + delta
    when = parse_time(text)
    if when is None:
        raise CliError(f"-s/--start-time '{text}' is neither an RFC 3339 time (2025-01-02T15:04:05Z) "
                       "nor a duration (10s, 5m, 1h30m)")
    return when


def parse_since(text: str, flag: str) -> datetime:
    """A duration back from now, or a point in time."""
    delta = parse_duration(text)
    if delta is not None:
        return datetime.now(timezone.utc) - delta
    when = parse_time(text)
    if when is None:
        raise CliError(f"{flag} '{text}' is neither a duration (300ms, 1.5h, 720h) nor a time "
                       "(2025-01-02T15:04:05Z or 2025-01-02)")
    return when


def emit(value: Any, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(value, indent=2))
    else:
        click.echo(yaml.safe_dump(value, sort_keys=False, allow_unicode=True), nl=False)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns aligned with two spaces between them; an empty cell shows as `-`."""
    cells = [[("-" if v is None or v == "" else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
