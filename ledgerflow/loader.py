"""Finding the WorkflowRuntime named on the command line (`pkg.mod`, `pkg.mod:attr`, `file.py`)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from ledgerflow.errors import SetupError
from ledgerflow.runtime import WorkflowRuntime

T = TypeVar("T")


def load_runtime(target: str) -> WorkflowRuntime:
    """The runtime in `target`; the working directory is importable, as with `celery -A`."""
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    module_part, _, attr = target.partition(":")
    module = _import(module_part)
    if attr:
        runtime = getattr(module, attr, None)
        if not isinstance(runtime, WorkflowRuntime):
            raise SetupError(f"{target}: '{attr}' is not a WorkflowRuntime in {module.__name__}; "
                             "name the runtime's variable after the colon")
        return runtime
    found = [v for v in vars(module).values() if isinstance(v, WorkflowRuntime)]
    if len(found) != 1:
        raise SetupError(
            f"{target}: expected exactly one WorkflowRuntime in {module.__name__}, found {len(found)}; "
            "name it as MODULE:ATTRIBUTE."
        )
    return found[0]


def _import(name: str) -> ModuleType:
    if name.endswith(".py") or "/" in name:
        path = Path(name).resolve()
        if not path.exists():
            raise SetupError(f"{name}: no such file; check the path (relative to {Path.cwd()})")
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        _run(name, lambda: spec.loader.exec_module(module))  # type: ignore[union-attr]
        return module
    return _run(name, lambda: importlib.import_module(name))


def _run(name: str, load: Callable[[], T]) -> T:
    """Load the user's module; what goes wrong in it becomes one line saying where."""
    try:
        return load()
    except SyntaxError as exc:
        raise SetupError(f"{name}: SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno}); fix the file") from exc
    except ModuleNotFoundError as exc:
        raise SetupError(f"{name}: cannot import it: {exc}; install the missing package "
                         "or fix the import (the working directory is importable)") from exc
    except Exception as exc:
        raise SetupError(f"{name}: importing it raised {type(exc).__name__}: {exc}") from exc
