"""Run the Alembic migrations programmatically (no alembic.ini needed on disk).

Concurrent callers are safe: on PostgreSQL the upgrade runs under a transaction-level
advisory lock (DDL is transactional there, so the lock covers the whole upgrade); on
SQLite the transaction begins with ``BEGIN IMMEDIATE``, which serialises writers.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: the first 8 bytes of "ledgerflow" as a signed bigint.
ADVISORY_LOCK_KEY = int.from_bytes(b"ledgerfl", "big", signed=True)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL lock_timeout = 0"))  # wait for a concurrent migration run
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
