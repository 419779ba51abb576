"""PostgreSQL LISTEN/NOTIFY as a change-feed transport, for deployments without Redis
(`ledgerflow.change_channel` does the rest).

Publishing sends `NOTIFY` (as `pg_notify`) on a small autocommit connection of its own, after
the writer's commit; listening holds one connection in `LISTEN`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy.engine import URL

from persistence import engine as engine_mod


def postgres_conninfo(database_url: str | URL) -> str | None:
    """A libpq connection string for a PostgreSQL database URL, else None."""
    url = engine_mod.normalize_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresTransport:
    """Connect, send and receive with NOTIFY/LISTEN (short connect timeout)."""

    name = "pg"

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo

    def open_publisher(self) -> Any:
        return _connect(self._conninfo)

    def send(self, publisher: Any, channel: str, message: str) -> None:
        publisher.execute("SELECT pg_notify(%s, %s)", (channel, message))

    def subscribe(self, channel: str) -> Any:
        conn = _connect(self._conninfo)
        try:
            conn.execute(f'LISTEN "{channel}"')
        except Exception:
            conn.close()
            raise
        return conn

    def receive(self, subscription: Any, timeout: float) -> Iterator[str]:
        for note in subscription.notifies(timeout=timeout):
            yield note.payload

    def close(self, connection: Any) -> None:
        connection.close()


def _connect(conninfo: str) -> Any:
    import psycopg

    return psycopg.connect(conninfo, autocommit=True, connect_timeout=2, application_name="ledgerflow-changes")
