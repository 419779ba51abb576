"""Fault points for crash tests. `LEDGERFLOW_FAULT_EXIT_AFTER_COMMIT=N` makes the process
die with `os._exit` right after its Nth step commit, before anything is published;
`LEDGERFLOW_FAULT_EXIT_BEFORE_COMMIT=N` makes it die inside its Nth step that has work,
after every write of the step and before the commit (the database rolls the step back).
Unset (always, in production) each costs one comparison per step. Read from the environment
at import, not from `ledgerflow.config.Settings`: test-only hooks that a crash test sets on a
child process, and the orchestrator layer may not import the SDK's settings."""

from __future__ import annotations

import os
import threading

_exit_after = int(os.environ.get("LEDGERFLOW_FAULT_EXIT_AFTER_COMMIT", "0") or 0)
_exit_before = int(os.environ.get("LEDGERFLOW_FAULT_EXIT_BEFORE_COMMIT", "0") or 0)
_commits = 0
_steps = 0
_lock = threading.Lock()


def after_commit() -> None:
    global _commits
    if not _exit_after:
        return
    with _lock:
        _commits += 1
        if _commits >= _exit_after:
            os._exit(137)


def before_commit() -> None:
    global _steps
    if not _exit_before:
        return
    with _lock:
        _steps += 1
        if _steps >= _exit_before:
            os._exit(137)
