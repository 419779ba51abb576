"""The layer rules of docs/internals.md, as a test.

The contracts live in pyproject.toml ([tool.importlinter]); this runs import-linter's
``lint-imports`` on them in a subprocess with the repository root as the working directory,
so the import graph is built from the source tree exactly as CI's ``lint-imports`` sees it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def lint_imports_executable() -> str:
    # Prefer the script installed next to this interpreter, so that a different
    # lint-imports earlier on PATH (another virtualenv) cannot answer for this one.
    candidate = Path(sysconfig.get_path("scripts")) / "lint-imports"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports not found: pip install -e '.[test]' (it brings import-linter)")
    return found


def test_import_layers_are_respected() -> None:
    result = subprocess.run(
        # --no-cache: do not leave an .import_linter_cache directory in the work tree.
        [lint_imports_executable(), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"import-linter contracts broken:\n{output}"
    # Guard against a silently empty configuration: every contract must have been checked.
    assert " KEPT" in output and "BROKEN" not in output, output
