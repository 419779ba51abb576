"""Management commands never create a database: from the wrong directory they say where
they looked and what to do; a start on a database no runtime has served warns."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ledgerflow.cli import main
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for key in ("LEDGERFLOW_DATABASE_URL", "LEDGERFLOW_API_TOKEN", "DAPR_API_TOKEN", "LEDGERFLOW_LOG_LEVEL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setenv("LEDGERFLOW_APP_ID", "nodb")
    return tmp_path


@pytest.mark.parametrize("command", [["wf", "list"], ["wf", "run", "hello"], ["wf", "get", "x"], ["api"]])
def test_a_missing_database_is_named_and_not_created(elsewhere: Path, command: list[str]) -> None:
    result = CliRunner().invoke(main, command, catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: no Ledgerflow database at {elsewhere / '.ledgerflow' / 'ledgerflow.db'}; run this from the directory "
        "of `ledgerflow dev` (its database is ./.ledgerflow/ledgerflow.db there), or set LEDGERFLOW_DATABASE_URL "
        "to the database your runtime uses\n")
    assert list(elsewhere.iterdir()) == []


def test_no_warning_once_a_runtime_has_served_the_app(elsewhere: Path) -> None:
    manager = WorkflowManager(Settings.from_env())
    try:
        manager.schedule("hello", instance_id="done-1")
        with manager.store.step("done-1") as tx:
            tx.update_instance(status="COMPLETED")
        result = CliRunner().invoke(main, ["wf", "run", "hello", "-i", "next-1"], catch_exceptions=False)
        assert (result.exit_code, result.stdout, result.stderr) == (
            0, "Workflow instance started successfully: next-1\n", "")
    finally:
        manager.close()
