"""Every command fails with one `Error:` line and exit code 1; the traceback only with
--debug or LEDGERFLOW_LOG_LEVEL=DEBUG."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledgerflow.cli import main
from ledgerflow.errors import SetupError

USE = "use sqlite:///path/to/file.db or postgresql+psycopg://user@host:port/db"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.delenv("LEDGERFLOW_LOG_LEVEL", raising=False)
    return tmp_path


def test_version() -> None:
    result = run("--version")
    assert result.stdout == f"ledgerflow {version('ledgerflow')}\n"


def test_dev_on_a_file_with_a_syntax_error(workdir: Path) -> None:
    (workdir / "app.py").write_text("import ledgerflow as wf\nwfr = wf.WorkflowRuntime(\n")
    assert one_error_line(run("dev", "app.py")) == (
        f"Error: app.py: SyntaxError: '(' was never closed ({workdir / 'app.py'}, line 2); fix the file")


def test_dev_on_a_file_importing_a_missing_package(workdir: Path) -> None:
    (workdir / "app.py").write_text("import nosuchpackage_xyz\n")
    assert one_error_line(run("dev", "app.py")) == (
        "Error: app.py: cannot import it: No module named 'nosuchpackage_xyz'; install the missing package "
        "or fix the import (the working directory is importable)")


def test_dev_on_a_module_that_raises(workdir: Path) -> None:
    (workdir / "app.py").write_text("raise RuntimeError('no config')\n")
    assert one_error_line(run("dev", "app.py")) == "Error: app.py: importing it raised RuntimeError: no config"


def test_dev_on_an_unreachable_database(workdir: Path) -> None:
    app = Path(__file__).resolve().parents[3] / "examples" / "order_app.py"
    line = one_error_line(run("dev", str(app), env={"LEDGERFLOW_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/db"}))
    assert line.startswith("Error: the workflow store at postgresql+psycopg://u@127.0.0.1:1/db is unavailable: ")
    assert line.endswith("; check that the database is running and reachable, then retry")


@pytest.mark.parametrize("command", [["wf", "list"], ["wf", "run", "hello"], ["api"]])
def test_a_malformed_database_url(workdir: Path, command: list[str]) -> None:
    result = run(*command, env={"LEDGERFLOW_DATABASE_URL": "notaurl"})
    assert one_error_line(result) == f"Error: malformed database URL (check LEDGERFLOW_DATABASE_URL): {USE}"


def test_an_unsupported_database_scheme_hides_the_password(workdir: Path) -> None:
    result = run("wf", "list", env={"LEDGERFLOW_DATABASE_URL": "mysql://u:secret@h/d"})
    assert one_error_line(result) == f"Error: unsupported database URL 'mysql://u:***@h/d': {USE}"


@pytest.mark.parametrize(("args", "env"), [(["--debug"], None), ([], {"LEDGERFLOW_LOG_LEVEL": "DEBUG"})])
def test_the_traceback_with_debug(workdir: Path, args: list[str], env: dict[str, str] | None) -> None:
    (workdir / "app.py").write_text("import nosuchpackage_xyz\n")
    with pytest.raises(SetupError, match="cannot import it"):
        run(*args, "dev", "app.py", env=env)
