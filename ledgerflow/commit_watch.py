"""Waking the in-process runtime (`ledgerflow dev`, `WorkflowRuntime().start()` on SQLite and
the in-memory broker) when another process commits.

The in-memory broker lives inside one process, so a start, event or signal written by the
CLI or another client cannot publish its wake-up to the runtime. A thread polls SQLite's
change counter instead: `PRAGMA data_version` on a connection of its own changes whenever
any other connection commits. On a change it reads the app's inbox and publishes
`orchestrate` for each instance holding a message it has not seen before (the runtime's own
commits move the counter too; their messages are usually consumed before the poll, or woken
once more at most). Idle, a poll is one read of the WAL index in shared memory: no query, no
busy work. The inbox is read here directly, on this read-only connection, because this
watcher exists only for SQLite.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("ledgerflow.runtime")

POLL_SECONDS = 0.02

_INBOX = ("SELECT i.instance_id, i.message_id FROM inbox AS i JOIN instances AS n ON n.instance_id = i.instance_id "
          "WHERE n.app_id = ?")


class CommitWatcher:
    """Calls `wake(instance_ids)` with the instances of `app_id` that have a new inbox message,
    within about POLL_SECONDS of another connection's commit to the SQLite file at `path`."""

    def __init__(self, path: str, app_id: str, wake: Callable[[list[str]], object],
                 interval: float = POLL_SECONDS) -> None:
        self._path, self._app_id, self._wake, self._interval = path, app_id, wake, interval
        self._stop = threading.Event()
        self._seen: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ledgerflow-commit-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        uri = Path(self._path).resolve().as_uri() + "?mode=ro"  # quoted: spaces, '?' or '#' in the path
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        try:
            version = None
            while not self._stop.wait(self._interval):
                try:
                    now = int(connection.execute("PRAGMA data_version").fetchone()[0])
                    if now != version:
                        version = now
                        self._wake_new(connection)
                except sqlite3.Error:  # a busy or briefly locked database: the next poll retries
                    log.debug("commit watch poll failed; retrying", exc_info=True)
        finally:
            connection.close()

    def _wake_new(self, connection: sqlite3.Connection) -> None:
        present = {(row[0], row[1]) for row in connection.execute(_INBOX, (self._app_id,))}
        new = list(dict.fromkeys(instance_id for instance_id, _ in present - self._seen))
        if new:
            self._wake(new)
        self._seen = present
