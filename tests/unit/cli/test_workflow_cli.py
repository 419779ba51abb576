"""`ledgerflow workflow` / `ledgerflow wf`: every command, flag and output format, on a fresh
SQLite database (no workflow runs: states and histories are written to the store directly)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from ledgerflow.cli import main
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager
from orchestrator import inbox
from orchestrator.engine import clock
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import NewEvent, NewInstance, as_utc

APP = "cliapp"


class Cli:
    def __init__(self, manager: WorkflowManager) -> None:
        self.manager = manager
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, ["--log-level", "WARNING", "workflow", *args], catch_exceptions=False)

    def ok(self, *args: str) -> list[str]:
        result = self(*args)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        return result.stdout.splitlines()

    def run(self, *args: str) -> list[str]:
        """`workflow run ARGS`: no runtime serves this database, so an immediate start warns."""
        result = self("run", *args)
        assert result.exit_code == 0, result.output
        iid = result.stdout.split(": ")[-1].strip()
        delayed = "-s" in args or "--start-time" in args
        app = args[args.index("-a") + 1] if "-a" in args else APP
        assert result.stderr == ("" if delayed else unserved_warning(iid, self.manager, app))
        return result.stdout.splitlines()

    def fails(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code != 0, result.output
        assert result.stdout == ""
        assert result.stderr.startswith("Error: ") or "Usage:" in result.stderr, result.stderr
        return result.stderr

    def status(self, instance_id: str) -> str | None:
        state = self.manager.state(instance_id)
        return None if state is None else state.runtime_status.name

    def set(self, instance_id: str, **fields: Any) -> None:
        with self.manager.store.step(instance_id) as tx:
            tx.update_instance(**fields)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setenv("LEDGERFLOW_APP_ID", APP)
    manager = WorkflowManager(Settings.from_env())
    manager.store.migrate()  # the database exists: management commands never create one
    yield Cli(manager)
    manager.close()


def unserved_warning(instance_id: str, manager: WorkflowManager, app: str = APP) -> str:
    return (f"Warning: no runtime has served app '{app}' in this database ({manager.store.url}) yet; "
            f"'{instance_id}' stays PENDING until one does: run `ledgerflow dev MODULE` in this directory, or "
            "`ledgerflow orchestrator MODULE` with the same LEDGERFLOW_DATABASE_URL\n")


def columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


# -- run ----------------------------------------------------------------------------------------


def test_run_prints_daprs_line_and_stores_the_input(cli) -> None:
    assert cli.run("OrderProcessingWorkflow", "-i", "order-1", "-x", '{"qty": 1}') == [
        "Workflow instance started successfully: order-1"]
    state = cli.manager.state("order-1")
    assert (state.name, state.serialized_input, state.runtime_status.name) == (
        "OrderProcessingWorkflow", '{"qty": 1}', "PENDING")
    line = cli.run("wf")[0]
    assert re.fullmatch(r"Workflow instance started successfully: [0-9a-f]{32}", line)


def test_wf_is_an_alias_and_app_id_is_accepted_everywhere(cli) -> None:
    result = CliRunner().invoke(main, ["wf", "run", "wf", "-i", "alias-1", "-a", "billing", "--input", '"x"'])
    assert result.exit_code == 0 and "alias-1" in result.stdout
    assert cli.manager.store.get_instance("alias-1").app_id == "billing"
    for command in ("run", "list", "history", "suspend", "resume", "terminate", "raise-event", "purge", "get"):
        assert "-a, --app-id" in cli(command, "--help").stdout, command


def test_run_start_time_takes_a_duration_or_an_rfc3339_time(cli) -> None:
    cli.run("wf", "-i", "later", "-s", "1h30m")
    start_at = cli.manager.store.get_instance("later").start_at
    expected = datetime.now(timezone.utc) + timedelta(hours=1, minutes=30)
    assert abs((start_at - expected).total_seconds()) < 60
    cli.run("wf", "-i", "fixed", "--start-time", "2030-01-02T15:04:05Z")
    assert cli.manager.store.get_instance("fixed").start_at == datetime(2030, 1, 2, 15, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(("args", "says"), [
    (["run", "wf", "-x", "{bad"], "-x/--input is not valid JSON"),
    (["run", "wf", "-x", "plain words"], "pass JSON text"),
    (["run", "wf", "-s", "tomorrow"], "neither an RFC 3339 time"),
    (["run", "wf", "-i", "bad id"], "is invalid"),
    (["run", "wf", "-i", "x" * 65], "the limit is 64"),
])
def test_run_refuses_bad_input_on_stderr(cli, args, says) -> None:
    assert says in cli.fails(*args)
    assert cli.manager.list_instances() == []


def test_run_on_an_active_id_says_what_to_do(cli) -> None:
    cli.run("wf", "-i", "dup")
    assert "terminate or purge it first, or use another instance ID" in cli.fails("run", "wf", "-i", "dup")


# -- list ---------------------------------------------------------------------------------------


@pytest.fixture
def listed(cli) -> Cli:
    old = datetime.now(timezone.utc) - timedelta(hours=3)
    cli.manager.store.create_instance(NewInstance(instance_id="old-1", app_id=APP, name="report", created_at=old),
                                      inbox.message("start", ev.ExecutionStarted(clock.naive_utc(old), "report")))
    cli.run("order", "-i", "o-1")
    cli.run("order", "-i", "o-2")
    cli.run("order", "-i", "other-app", "-a", "billing")
    cli.set("o-1", status="RUNNING", custom_status='{"stage": "paying"}')
    failure = json.dumps({"message": "card declined", "error_type": "ValueError", "stack_trace": None})
    cli.set("o-2", status="FAILED", failure=failure)
    cli.set("old-1", status="COMPLETED", output='"ok"')
    return cli


def test_list_short_has_daprs_columns(listed) -> None:
    lines = listed.ok("list")
    assert columns(lines[0]) == ["NAME", "ID", "STATUS", "CUSTOM STATUS", "AGE"]
    rows = [columns(line) for line in lines[1:]]
    assert [r[:3] for r in rows] == [["report", "old-1", "COMPLETED"], ["order", "o-1", "RUNNING"],
                                     ["order", "o-2", "FAILED"]]
    assert rows[1][3] == '{"stage": "paying"}' and rows[0][4] == "3h" and rows[0][3] == "-"


def test_list_wide_json_yaml_and_ids(listed) -> None:
    lines = listed.ok("list", "-o", "wide")
    assert columns(lines[0]) == ["NAME", "ID", "APP ID", "STATUS", "CUSTOM STATUS", "CREATED", "LAST UPDATE", "AGE",
                                 "FAILURE"]
    assert columns(lines[3])[2] == APP and columns(lines[3])[-1] == "card declined"
    as_json = json.loads("\n".join(listed.ok("list", "-o", "json")))
    assert [w["instanceID"] for w in as_json] == ["old-1", "o-1", "o-2"]
    assert as_json[2]["properties"]["dapr.workflow.failure.error_message"] == "card declined"
    assert set(as_json[0]) >= {"instanceID", "workflowName", "runtimeStatus", "createdAt", "appID", "age"}
    as_yaml = yaml.safe_load("\n".join(listed.ok("list", "--output", "yaml")))
    assert as_yaml == [{**w, "age": y["age"]} for w, y in zip(as_json, as_yaml, strict=True)]
    assert listed.ok("list", "-o", "ids") == ["old-1", "o-1", "o-2"]


def test_list_filters(listed) -> None:
    assert listed.ok("list", "-o", "ids", "-w", "order") == ["o-1", "o-2"]
    assert listed.ok("list", "-o", "ids", "-s", "running") == ["o-1"]
    assert listed.ok("list", "-o", "ids", "-s", "RUNNING,FAILED") == ["o-1", "o-2"]
    assert listed.ok("list", "-o", "ids", "--filter-status", "COMPLETED", "-s", "FAILED") == ["old-1", "o-2"]
    assert listed.ok("list", "-o", "ids", "-m", "1h") == ["o-1", "o-2"]
    since = (datetime.now(timezone.utc) - timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert listed.ok("list", "-o", "ids", "--filter-max-age", since) == ["old-1", "o-1", "o-2"]
    assert listed.ok("list", "-o", "ids", "-a", "billing") == ["other-app"]
    assert "Unknown workflow status 'SLEEPING'" in listed.fails("list", "-s", "SLEEPING")
    assert "neither a duration" in listed.fails("list", "-m", "a while")
    assert "Invalid value for '-o'" in listed.fails("list", "-o", "table")


# -- get and history ----------------------------------------------------------------------------


def test_get_prints_the_http_shape(listed) -> None:
    body = json.loads("\n".join(listed.ok("get", "old-1")))
    assert body["runtimeStatus"] == "COMPLETED" and body["properties"]["dapr.workflow.output"] == '"ok"'
    assert yaml.safe_load("\n".join(listed.ok("get", "old-1", "-o", "yaml"))) == body


@pytest.fixture
def with_history(cli) -> Cli:
    cli.run("order", "-i", "h-1", "-x", '"in"')
    t = datetime(2025, 1, 2, 15, 4, 5)
    events = [ev.OrchestratorStarted(t), ev.ExecutionStarted(t, "order", '"in"'),
              ev.TaskScheduled(t, 0, "charge", "5"), ev.TimerCreated(t, 1, t + timedelta(minutes=5)),
              ev.TaskFailed(t + timedelta(seconds=2), 0, ev.FailureDetails("card declined", "ValueError")),
              ev.EventRaised(t + timedelta(seconds=3), "approval", '{"ok": true}'),
              ev.ExecutionCompleted(t + timedelta(seconds=4), "COMPLETED", '"done"')]
    with cli.manager.store.step("h-1") as tx:
        tx.append_history([NewEvent(i, *codec.encode(e), timestamp=as_utc(e.timestamp))
                           for i, e in enumerate(events)])
    return cli


def test_history_short_and_wide(with_history) -> None:
    lines = with_history.ok("history", "h-1")
    assert columns(lines[0]) == ["TYPE", "NAME", "EVENTID", "ELAPSED", "STATUS", "DETAILS"]
    rows = [columns(line) for line in lines[1:]]
    assert [r[0] for r in rows] == ["OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "TimerCreated",
                                    "TaskFailed", "EventRaised", "ExecutionCompleted"]
    assert rows[4] == ["TaskFailed", "charge", "0", "2s", "FAILED", "ValueError: card declined"]
    assert rows[5] == ["EventRaised", "approval", "-", "1s", "-", 'data={"ok": true}']
    assert rows[3][-1] == "fireAt=2025-01-02T15:09:05Z"
    wide = with_history.ok("history", "h-1", "-o", "wide")
    assert columns(wide[0]) == ["SEQ", "TIMESTAMP", "TYPE", "NAME", "EVENTID", "ELAPSED", "STATUS", "DETAILS"]
    assert columns(wide[1])[:3] == ["0", "2025-01-02T15:04:05Z", "OrchestratorStarted"]


def test_history_json_and_yaml(with_history) -> None:
    events = json.loads("\n".join(with_history.ok("history", "h-1", "-o", "json")))
    assert [e["sequence"] for e in events] == list(range(7))
    assert events[2] | {"event": None} == {
        "generation": 0, "sequence": 2, "timestamp": "2025-01-02T15:04:05Z", "type": "TaskScheduled",
        "name": "charge", "eventId": 0, "elapsed": "0s", "status": None, "details": "input=5", "event": None}
    assert events[2]["event"]["name"] == "charge"
    assert yaml.safe_load("\n".join(with_history.ok("history", "h-1", "-o", "yaml"))) == events
    assert "unable to find workflow with the provided instance ID: nope" in with_history.fails("history", "nope")


# -- suspend, resume, terminate, raise-event ----------------------------------------------------


def test_suspend_resume_terminate_and_raise_event_print_daprs_lines(cli) -> None:
    cli.run("order", "-i", "s-1")
    cli.set("s-1", status="RUNNING")
    assert cli.ok("suspend", "s-1", "-r", "maintenance") == ["Workflow 's-1' suspended successfully"]
    assert cli.status("s-1") == "SUSPENDED"
    assert cli.ok("resume", "s-1", "--reason", "done") == ["Workflow 's-1' resumed successfully"]
    assert cli.status("s-1") == "RUNNING"
    assert cli.ok("raise-event", "s-1/approval", "-x", '{"ok": true}') == [
        "Workflow 's-1' raised event 'approval' successfully"]
    assert cli.ok("raise-event", "s-1/ping") == ["Workflow 's-1' raised event 'ping' successfully"]
    assert cli.ok("terminate", "s-1", "-o", '"stopped"') == ["Workflow 's-1' terminated successfully"]
    pending = cli.manager.store.pending_instances(datetime.now(timezone.utc) + timedelta(seconds=1))
    assert ("s-1", APP) in pending  # the orchestrator applies them


def test_signals_that_change_nothing_say_so_and_exit_0_as_dapr(cli) -> None:
    cli.run("order", "-i", "f-1")
    cli.run("order", "-i", "r-1")
    cli.set("f-1", status="COMPLETED")
    before = cli.manager.store.pending_instances(datetime.now(timezone.utc) + timedelta(seconds=1))
    assert cli.ok("raise-event", "f-1/approval") == [
        "Workflow 'f-1' is COMPLETED; nothing was changed (event 'approval' was not delivered)"]
    assert cli.ok("terminate", "f-1") == ["Workflow 'f-1' is COMPLETED; nothing was changed"]
    assert cli.ok("suspend", "f-1") == ["Workflow 'f-1' is COMPLETED; nothing was changed"]
    assert cli.ok("resume", "f-1") == ["Workflow 'f-1' is COMPLETED; nothing was changed"]
    assert cli.status("f-1") == "COMPLETED"
    assert cli.manager.store.pending_instances(datetime.now(timezone.utc) + timedelta(seconds=1)) == before
    cli.set("r-1", status="RUNNING")
    assert cli.ok("resume", "r-1") == ["Workflow 'r-1' is RUNNING; nothing was changed"]


@pytest.mark.parametrize(("args", "says"), [
    (["suspend", "ghost"], "unable to find workflow with the provided instance ID: ghost (app 'cliapp')"),
    (["resume", "ghost"], "check the ID with `ledgerflow workflow list -a cliapp`"),
    (["terminate", "ghost"], "unable to find workflow"),
    (["raise-event", "ghost/go"], "unable to find workflow"),
    (["raise-event", "no-slash"], "is not ID/EVENT"),
    (["raise-event", "x/"], "is not ID/EVENT"),
    (["terminate", "x", "-o", "{bad"], "-o/--output is not valid JSON"),
    (["suspend", "bad id"], "is invalid"),
])
def test_signal_errors_go_to_stderr_and_say_what_to_do(cli, args, says) -> None:
    assert says in cli.fails(*args)


def test_commands_act_on_their_apps_instances_only(cli) -> None:
    cli.run("order", "-i", "b-1", "-a", "billing")
    cli.set("b-1", status="RUNNING")
    assert "pass the owning app with -a" in cli.fails("suspend", "b-1")
    assert cli.ok("suspend", "b-1", "-a", "billing") == ["Workflow 'b-1' suspended successfully"]


# -- purge --------------------------------------------------------------------------------------


def test_purge_by_id(cli) -> None:
    cli.run("order", "-i", "p-1")
    cli.run("order", "-i", "p-2")
    cli.set("p-1", status="COMPLETED")
    assert cli.ok("purge", "p-1") == ["Workflow 'p-1' purged successfully"]
    assert cli.status("p-1") is None
    result = cli("purge", "p-2", "ghost")
    assert result.exit_code == 1 and result.stdout == ""
    assert "is PENDING, not COMPLETED" in result.stderr and "--force" in result.stderr
    assert "unable to find workflow with the provided instance ID: ghost" in result.stderr
    assert cli.ok("purge", "p-2", "--force") == ["Workflow 'p-2' purged successfully"]
    assert cli.status("p-2") is None


def test_purge_all_older_than_and_status_filters(listed) -> None:
    assert listed.ok("purge", "--all-older-than", "720h") == ["No workflow instances to purge"]
    assert listed.ok("purge", "--all-older-than", "2h") == ["Workflow 'old-1' purged successfully"]
    assert listed.status("o-2") == "FAILED"
    assert listed.ok("purge", "--all", "--all-filter-status", "COMPLETED") == ["No workflow instances to purge"]
    assert listed.ok("purge", "--all") == ["Workflow 'o-2' purged successfully"]
    assert listed.status("o-1") == "RUNNING"
    assert "needs --force" in listed.fails("purge", "--all", "--all-filter-status", "RUNNING")
    assert listed.ok("purge", "--all", "--force", "--all-filter-status", "running") == [
        "Workflow 'o-1' purged successfully"]
    assert listed.manager.store.get_instance("other-app") is not None  # another app's


@pytest.mark.parametrize(("args", "says"), [
    ([], "name the instances to purge, or pass --all or --all-older-than 720h"),
    (["x", "--all"], "not both"),
    (["x", "--all-filter-status", "FAILED"], "needs --all"),
    (["--all-older-than", "soon"], "neither a duration"),
    (["--all", "--all-filter-status", "SLEEPING"], "unknown status"),
])
def test_purge_refuses_ambiguous_requests(cli, args, says) -> None:
    assert says in cli.fails("purge", *args)


def test_a_database_that_cannot_be_reached_is_reported(monkeypatch) -> None:
    from tests.fixtures.redis import free_port

    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x")
    result = CliRunner().invoke(main, ["workflow", "list"])
    assert result.exit_code == 1
    assert "is unavailable" in result.stderr and "check that the database is running" in result.stderr
