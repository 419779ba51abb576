"""`wf wait` (exit code by final status), `wf get` with the suspend reason, `wf history` in
order of sequence with a sane ELAPSED, and an example in every command's --help."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from ledgerflow.cli import main
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import NewEvent, as_utc

T = datetime(2025, 1, 2, 15, 4, 5)


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkflowManager]:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setenv("LEDGERFLOW_APP_ID", "everyday")
    m = WorkflowManager(Settings.from_env())
    yield m
    m.close()


def wf(*args: str) -> Result:
    return CliRunner().invoke(main, ["--log-level", "WARNING", "wf", *args], catch_exceptions=False)


def instance(manager: WorkflowManager, instance_id: str, history: list[ev.HistoryEvent] = (), **fields) -> None:
    manager.schedule("order", instance_id=instance_id)
    with manager.store.step(instance_id) as tx:
        if history:
            tx.append_history([NewEvent(i, *codec.encode(e), timestamp=as_utc(e.timestamp))
                               for i, e in enumerate(history)])
        if fields:
            tx.update_instance(**fields)


@pytest.mark.parametrize(("fields", "code", "line"), [
    ({"status": "COMPLETED", "output": '"ok"'}, 0, "Workflow 'w-1' COMPLETED"),
    ({"status": "FAILED", "failure": '{"message": "card declined", "error_type": "ValueError"}'}, 2,
     "Workflow 'w-1' FAILED: ValueError: card declined"),
    ({"status": "TERMINATED"}, 3, "Workflow 'w-1' TERMINATED"),
])
def test_wait_exits_by_the_final_status(manager, fields, code, line) -> None:
    instance(manager, "w-1", **fields)
    result = wf("wait", "w-1")
    assert (result.exit_code, result.stdout, result.stderr) == (code, line + "\n", "")


def test_wait_times_out_with_124_and_says_so(manager) -> None:
    instance(manager, "w-2", status="RUNNING")
    result = wf("wait", "w-2", "--timeout", "300ms")
    assert (result.exit_code, result.stdout, result.stderr) == (
        124, "", "Error: workflow 'w-2' is still RUNNING after 300ms; wait longer with --timeout\n")


def test_wait_for_an_unknown_instance_is_an_error(manager) -> None:
    manager.store.migrate()
    result = wf("wait", "nope", "-t", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: unable to find workflow with the provided instance ID: nope")


def test_get_shows_the_suspend_reason(manager) -> None:
    instance(manager, "s-1", [ev.OrchestratorStarted(T), ev.ExecutionStarted(T, "order", None),
                              ev.ExecutionSuspended(T + timedelta(seconds=1), "checking stock")],
             status="SUSPENDED")
    result = wf("get", "s-1")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert (body["runtimeStatus"], body["suspendReason"]) == ("SUSPENDED", "checking stock")


def test_history_orders_by_sequence_and_elapsed_never_counts_back(manager) -> None:
    # As stored by a real run: an event raised from outside carries the time it was sent,
    # before the OrchestratorStarted of the step that applied it.
    events = [ev.OrchestratorStarted(T + timedelta(milliseconds=20)), ev.ExecutionStarted(T, "order", None),
              ev.OrchestratorStarted(T + timedelta(seconds=7, milliseconds=500)),
              ev.EventRaised(T + timedelta(seconds=7, milliseconds=480), "approval", '"yes"'),
              ev.ExecutionCompleted(T + timedelta(seconds=7, milliseconds=530), "COMPLETED", '"done"')]
    instance(manager, "h-1", events)
    rows = [re.split(r"\s{2,}", line.strip()) for line in wf("history", "h-1", "-o", "wide").stdout.splitlines()[1:]]
    assert [(r[0], r[2], r[5]) for r in rows] == [
        ("0", "OrchestratorStarted", "0s"), ("1", "ExecutionStarted", "0s"), ("2", "OrchestratorStarted", "7.48s"),
        ("3", "EventRaised", "0s"), ("4", "ExecutionCompleted", "30ms")]


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if name == "wf":  # the alias of `workflow`
            continue
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


@pytest.mark.parametrize(("path", "command"), [((), main), *commands(main)], ids=lambda v: " ".join(v) if
                         isinstance(v, tuple) else None)
def test_every_help_ends_with_examples_of_its_own_command(path: tuple[str, ...], command: click.Command) -> None:
    text = CliRunner().invoke(main, [*path, "--help"]).stdout
    _, _, tail = text.partition("\n  Examples:\n")
    lines = tail.splitlines()
    assert lines, text
    spelled = " ".join(("wf" if p == "workflow" else p) for p in path)
    for line in lines:
        assert re.fullmatch(r"    (\w+=\S+ )?ledgerflow .+", line), line
        assert spelled in line.replace("workflow", "wf"), (spelled, line)
