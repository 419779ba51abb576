"""Finding the WorkflowRuntime named on the command line (`pkg.mod`, `pkg.mod:attr`, `file.py`)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ledgerflow.runtime import WorkflowRuntime


def load_runtime(target: str) -> WorkflowRuntime:
    """The runtime in `target`; the working directory is importable, as with `celery -A`."""
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    module_part, _, attr = target.partition(":")
    module = _import(module_part)
    if attr:
        runtime = getattr(module, attr, None)
        if not isinstance(runtime, WorkflowRuntime):
            raise SystemExit(f"{target}: '{attr}' is not a WorkflowRuntime in {module.__name__}.")
        return runtime
    found = [v for v in vars(module).values() if isinstance(v, WorkflowRuntime)]
    if len(found) != 1:
        raise SystemExit(
            f"{target}: expected exactly one WorkflowRuntime in {module.__name__}, found {len(found)}; "
            "name it as MODULE:ATTRIBUTE."
        )
    return found[0]


def _import(name: str) -> ModuleType:
    if name.endswith(".py") or "/" in name:
        path = Path(name).resolve()
        if not path.exists():
            raise SystemExit(f"{name}: no such file.")
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise SystemExit(f"{name}: cannot import it ({exc}).") from exc
