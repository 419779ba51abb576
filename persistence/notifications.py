"""Change notifications over PostgreSQL LISTEN/NOTIFY, for deployments without Redis.

`publish` sends `NOTIFY` (as `pg_notify`) on a small autocommit connection of its own, after
the writer's commit; `listen()` runs a thread holding one connection in `LISTEN`. Like Redis
pub/sub, a notification sent while the listener is reconnecting is lost: the listener calls
`on_reset` on every (re)connect and waiters re-read then.

Publishing never raises and never blocks a step for long: a short connect timeout, and
after a failure publishing is skipped for `RETRY_AFTER_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

from persistence import engine as engine_mod

log = logging.getLogger("ledgerflow.notifications")

RETRY_AFTER_SECONDS = 2.0
_POLL_SECONDS = 0.5
_MAX_BACKOFF_SECONDS = 2.0


def postgres_conninfo(database_url: str | URL) -> str | None:
    """A libpq connection string for a PostgreSQL database URL, else None."""
    url = engine_mod.normalize_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresChannel:
    """One NOTIFY channel: `publish(message)` from any thread; `listen()` starts a thread
    that calls `on_message(text)` for every notification and `on_reset()` on every (re)connect."""

    def __init__(self, conninfo: str, channel: str, on_message: Callable[[str], None],
                 on_reset: Callable[[], None]) -> None:
        self._conninfo = conninfo
        self.channel = channel
        self._on_message = on_message
        self._on_reset = on_reset
        self._lock = threading.Lock()
        self._publisher: Any = None
        self._skip_until = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._failed = threading.Event()

    # -- publishing --------------------------------------------------------------------

    def publish(self, message: str) -> None:
        if time.monotonic() < self._skip_until:
            return
        with self._lock:
            try:
                if self._publisher is None or self._publisher.closed:
                    self._publisher = _connect(self._conninfo)
                self._publisher.execute("SELECT pg_notify(%s, %s)", (self.channel, message))
            except Exception as exc:  # a lost notification costs a waiter one backstop interval
                self._skip_until = time.monotonic() + RETRY_AFTER_SECONDS
                _close(self._publisher)
                self._publisher = None
                log.warning("change notification not published (%s); retrying in %.0fs", _brief(exc),
                            RETRY_AFTER_SECONDS)

    # -- listening ---------------------------------------------------------------------

    def listen(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                            name="ledgerflow-pg-changes", daemon=True)
            self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """True when listening. Does not wait while the last connection attempt failed."""
        if self._ready.is_set():
            return True
        if self._failed.is_set():
            return False
        return self._ready.wait(timeout)

    def _run(self, stop: threading.Event) -> None:
        backoff = 0.05
        while not stop.is_set():
            conn = None
            try:
                conn = _connect(self._conninfo)
                conn.execute(f'LISTEN "{self.channel}"')
                self._failed.clear()
                self._ready.set()
                self._on_reset()
                backoff = 0.05
                while not stop.is_set():
                    for note in conn.notifies(timeout=_POLL_SECONDS):
                        self._on_message(note.payload)
            except Exception as exc:
                if not stop.is_set():
                    log.warning("change listener disconnected (%s); reconnecting", _brief(exc))
                self._failed.set()
            finally:
                self._ready.clear()
                _close(conn)
            stop.wait(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
            publisher, self._publisher = self._publisher, None
        if thread is not None:
            thread.join(_POLL_SECONDS * 4)
        _close(publisher)


def _connect(conninfo: str) -> Any:
    import psycopg

    return psycopg.connect(conninfo, autocommit=True, connect_timeout=2, application_name="ledgerflow-changes")


def _close(conn: Any) -> None:
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
