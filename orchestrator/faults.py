"""Fault points for crash tests: `LEDGERFLOW_FAULT_EXIT_AFTER_COMMIT=N` makes the process
die with `os._exit` right after its Nth step commit, before anything is published.
Unset (always, in production) it costs one comparison per step."""

from __future__ import annotations

import os
import threading

_exit_after = int(os.environ.get("LEDGERFLOW_FAULT_EXIT_AFTER_COMMIT", "0") or 0)
_commits = 0
_lock = threading.Lock()


def after_commit() -> None:
    global _commits
    if not _exit_after:
        return
    with _lock:
        _commits += 1
        if _commits >= _exit_after:
            os._exit(137)
