"""Create a SQLAlchemy engine from a URL, with the settings each dialect needs.

SQLite: WAL, ``BEGIN IMMEDIATE`` for every write transaction (so a step takes the write
lock up front instead of failing to upgrade a read lock later), a 30 s busy timeout and
foreign keys.  pysqlite's own transaction handling is switched off
(``isolation_level=None``) so that SQLAlchemy's ``begin`` event decides what BEGIN says.

PostgreSQL: psycopg 3, a ping before reusing a connection that sat idle for a second (a
restarted server costs one failed ping, not a failed step; a busy pool pays no ping per
checkout), a connect timeout and TCP keepalives so a dead server is noticed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

BUSY_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 10
PING_AFTER_IDLE_SECONDS = 1.0
IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 60
LOCK_TIMEOUT_SECONDS = 5

_USE = "use sqlite:///path/to/file.db or postgresql+psycopg://user@host:port/db"

# Connection execution option: this transaction only reads (SQLite: plain BEGIN).
READ_ONLY = "ledgerflow_read_only"


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://``."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise ValueError(f"malformed database URL (check LEDGERFLOW_DATABASE_URL): {_USE}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def dialect_of(url: URL) -> str:
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(
            f"unsupported database URL {url.render_as_string(hide_password=True)!r}: {_USE}"
        )
    return backend


def create_engine(url: str | URL, *, idle_in_transaction_timeout: float = IDLE_IN_TRANSACTION_TIMEOUT_SECONDS,
                  lock_timeout: float = LOCK_TIMEOUT_SECONDS, **kwargs: Any) -> Engine:
    """Create the engine for ``url``; ``kwargs`` go to :func:`sqlalchemy.create_engine`.
    The two timeouts are PostgreSQL's session limits (see `_session_options`)."""
    parsed = normalize_url(url)
    if dialect_of(parsed) == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    return _postgres_engine(parsed, _session_options(idle_in_transaction_timeout, lock_timeout), **kwargs)


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:") or (
        "mode=memory" in str(url)
    ):
        raise ValueError(
            "in-memory SQLite is not supported (each connection would see its own "
            "database); use a file, e.g. sqlite:///.ledgerflow/state.db"
        )
    parent = os.path.dirname(os.path.abspath(database))
    os.makedirs(parent, exist_ok=True)
    # "timeout" is sqlite3's busy timeout: how long a writer waits for the lock.
    connect_args = {"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
    connect_args.update(kwargs.pop("connect_args", {}))
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            _enable_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent: a no-op once done).

    The switch needs an exclusive lock and SQLite may answer "database is locked" at
    once instead of waiting, when several processes open a new file together: retry.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _postgres_engine(url: URL, options: str, **kwargs: Any) -> Engine:
    connect_args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "application_name": "ledgerflow",
        "options": options,
    }
    connect_args.update(kwargs.pop("connect_args", {}))
    kwargs.setdefault("pool_recycle", 1800)
    engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


def _session_options(idle: float, lock: float) -> str:
    """Server-side limits for every session, so a client that stops (SIGSTOP, a long GC
    pause, a frozen VM) cannot hold a workflow's row lock for ever:

    - ``idle_in_transaction_session_timeout``: the server ends a session that sits inside a
      transaction without sending anything for this long, which releases its locks; another
      orchestrator then takes the instance over and the stale one's commit fails (fenced).
      It must stay above the longest gap between statements of a step (running workflow
      code, a cold replay of a long history).
    - ``lock_timeout``: a statement waiting for a lock gives up after this long (the task is
      retried, or reconcile wakes the instance again) instead of tying up a worker thread
      behind a stuck holder. The migration run turns it off for itself.

    Seconds, 0 off: LEDGERFLOW_DB_IDLE_IN_TRANSACTION_TIMEOUT and LEDGERFLOW_DB_LOCK_TIMEOUT
    (`ledgerflow.config.Settings`), else the defaults above.
    """
    return (f"-c idle_in_transaction_session_timeout={int(idle * 1000)} "
            f"-c lock_timeout={int(lock * 1000)}")


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Pre-ping only connections that sat in the pool for ``idle_seconds``.

    ``pool_pre_ping`` costs a round trip on every checkout (five per workflow step); a
    connection handed back a moment ago is alive, and a dead one found in use still
    invalidates the whole pool (SQLAlchemy does that on any disconnect error).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["ledgerflow_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("ledgerflow_idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool then replaces this connection and retries
            raise sa_exc.DisconnectionError(str(exc)) from exc
