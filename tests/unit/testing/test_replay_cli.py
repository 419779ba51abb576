"""`ledgerflow replay MODULE HISTORY...` and `--from-db`: one line per history, a summary,
exit code 1 when any history no longer replays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from ledgerflow.cli import main
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager
from ledgerflow.testing import WorkflowTestEnvironment
from orchestrator import inbox
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import NewEvent, NewInstance, as_utc
from security import context as sec_context
from security.certs import init_certs
from tests.unit.testing import app as app_module
from tests.unit.testing import recorded

APP = "replayapp"
APP_SOURCE = '''
from datetime import timedelta
import ledgerflow as wf

wfr = wf.WorkflowRuntime()

@wfr.workflow(name="order")
def order(ctx, _=None):
    yield ctx.call_activity("{first}")
    yield ctx.create_timer(timedelta(hours=1))
    yield ctx.call_activity("charge")
    return "done"
'''
RENAMED_LINE = ("FAIL  order-1: event #2 (TaskScheduled): history recorded call_activity(reserve); "
                "the code now called call_activity(reserve_stock)")


def app(tmp_path: Path, first: str) -> str:
    path = tmp_path / f"app_{first}.py"
    path.write_text(APP_SOURCE.format(first=first), encoding="utf-8")
    return str(path)


def replay(*args: str) -> Result:
    return CliRunner().invoke(main, ["--log-level", "WARNING", "replay", *args], catch_exceptions=False)


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    """A directory with the history exported by `wf history -o json` and by the HTTP API."""
    events = recorded.recorded()
    folder = tmp_path / "histories"
    folder.mkdir()
    (folder / "order-1.json").write_text(json.dumps(recorded.cli_json(events)), encoding="utf-8")
    (folder / "from-http.json").write_text(json.dumps(recorded.http_json(events)), encoding="utf-8")
    return folder


def test_histories_that_replay_print_ok_and_exit_0(tmp_path: Path, exported: Path) -> None:
    result = replay(app(tmp_path, "reserve"), str(exported))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["OK    order-1 (12 events)", "OK    order-1 (12 events)",
                                          "2 histories replayed: 2 OK, 0 failed"]


def test_a_history_that_no_longer_replays_is_named_and_exits_1(tmp_path: Path, exported: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json", encoding="utf-8")
    result = replay(app(tmp_path, "reserve_stock"), str(exported / "order-1.json"), str(bad))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == RENAMED_LINE
    assert lines[1].startswith(f"FAIL  {bad}: cannot read it as JSON")
    assert lines[2] == "2 histories replayed: 0 OK, 2 failed"


def test_files_or_from_db_must_be_named(tmp_path: Path) -> None:
    result = replay(app(tmp_path, "reserve"))
    assert result.exit_code != 0 and "--from-db" in result.stderr


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkflowManager]:
    """order-1 (completed) and order-2 (running) stored in the configured SQLite database."""
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setenv("LEDGERFLOW_APP_ID", APP)
    manager = WorkflowManager(Settings.from_env())
    for instance_id, steps, status in (("order-1", 4, "COMPLETED"), ("order-2", 2, "RUNNING")):
        store(manager, instance_id, recorded.recorded(steps), status)
    yield manager
    manager.close()


def store(manager: WorkflowManager, instance_id: str, events: list[ev.HistoryEvent], status: str) -> None:
    started = events[1]
    manager.store.create_instance(NewInstance(instance_id=instance_id, app_id=APP, name="order"),
                                  inbox.message("start", started))
    with manager.store.step(instance_id) as tx:
        tx.append_history([NewEvent(i, *codec.encode(e), timestamp=as_utc(e.timestamp))
                           for i, e in enumerate(events)])
        tx.delete_inbox([m.id for m in tx.visible_inbox()])
        tx.update_instance(status=status)


def test_from_db_replays_every_matching_instance(tmp_path: Path, database: WorkflowManager) -> None:
    result = replay(app(tmp_path, "reserve"), "--from-db")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["OK    order-1 (12 events)", "OK    order-2 (6 events)",
                                          "2 histories replayed: 2 OK, 0 failed"]
    result = replay(app(tmp_path, "reserve_stock"), "--from-db", "-s", "COMPLETED")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [RENAMED_LINE, "1 history replayed: 0 OK, 1 failed"]


def test_from_db_verifies_a_history_before_replaying_it(tmp_path: Path, database: WorkflowManager) -> None:
    with database.store.step("order-2") as tx:
        tx.update_instance(signature_head=b"forged")  # signatures on a history that says it is unsigned
    result = replay(app(tmp_path, "reserve"), "--from-db", "-w", "order")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "OK    order-1 (12 events)"
    assert lines[1].startswith("FAIL  order-2: ") and "not signed" in lines[1]
    assert lines[2] == "2 histories replayed: 1 OK, 1 failed"


def test_histories_the_real_runtime_recorded_replay_from_export_and_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with WorkflowTestEnvironment(app_module.wfr) as env:
        monthly = env.client.schedule_new_workflow(app_module.monthly, instance_id="monthly-1")
        approval = env.client.schedule_new_workflow(app_module.approval, input=3.0, instance_id="approval-1")
        env.client.raise_workflow_event(approval, "approval")
        for iid in (monthly, approval):
            env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
        monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", env.database_url or "")
        monkeypatch.setenv("LEDGERFLOW_APP_ID", "testing-env")
        exported = CliRunner().invoke(main, ["wf", "history", monthly, "-o", "json"], catch_exceptions=False)
        assert exported.exit_code == 0, exported.output
        (tmp_path / f"{monthly}.json").write_text(exported.stdout, encoding="utf-8")

        result = replay("tests.unit.testing.app", "--from-db")
        assert result.exit_code == 0, result.output
        assert [line.split()[1] for line in result.stdout.splitlines()[:-1]] == [monthly, approval]
        assert replay("tests.unit.testing.app", str(tmp_path / f"{monthly}.json")).exit_code == 0

        longer = tmp_path / "longer.py"
        longer.write_text(
            "from datetime import timedelta\nimport ledgerflow as wf\nwfr = wf.WorkflowRuntime()\n\n"
            "@wfr.workflow\ndef monthly(ctx, _=None):\n    yield ctx.create_timer(timedelta(days=31))\n",
            encoding="utf-8")
        result = replay(str(longer), str(tmp_path / f"{monthly}.json"))
        assert result.exit_code == 1
        assert result.stdout.startswith("FAIL  monthly-1: event #2 (TimerCreated): history recorded create_timer(")
        assert "; the code now called create_timer(" in result.stdout


@pytest.fixture
def signing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Signing on for app `testing-env`, with a fresh dev CA and certificate."""
    certs = tmp_path / "certs"
    monkeypatch.setenv("LEDGERFLOW_SIGNING", "on")
    monkeypatch.setenv("LEDGERFLOW_CERTS_DIR", str(certs))
    monkeypatch.setenv("LEDGERFLOW_RESOURCES_DIR", str(tmp_path / "resources"))
    init_certs(certs, "testing-env", key_type="ed25519")
    sec_context.reset_cache()
    yield
    monkeypatch.undo()
    sec_context.reset_cache()


def test_from_db_verifies_signed_histories_and_reports_a_tampered_one(
        signing: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with WorkflowTestEnvironment(app_module.wfr) as env:
        for iid in ("signed-1", "signed-2"):
            env.client.schedule_new_workflow(app_module.monthly, instance_id=iid)
            env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10)
        engine = sa.create_engine(env.database_url or "")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM instances WHERE signed")).scalar() == 2
            conn.execute(sa.text("UPDATE history_events SET payload = replace(payload, '\"fire_at\":\"2', "
                                 "'\"fire_at\":\"1') WHERE instance_id = 'signed-2' AND type = 'TimerCreated'"))
        engine.dispose()
        monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", env.database_url or "")
        monkeypatch.setenv("LEDGERFLOW_APP_ID", "testing-env")
        result = replay("tests.unit.testing.app", "--from-db")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "OK    signed-1 (6 events)"
    assert lines[1].startswith("FAIL  signed-2: ") and "digest" in lines[1], lines[1]
    assert lines[2] == "2 histories replayed: 1 OK, 1 failed"
