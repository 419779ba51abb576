"""Alembic environment for Ledgerflow.

``Store.migrate()`` passes an open connection in ``config.attributes["connection"]``
(already in a transaction, under the migration lock).  Running the ``alembic`` command
against ``sqlalchemy.url`` works too, for development.
"""

from __future__ import annotations

from alembic import context

from persistence import engine as engine_mod
from persistence import schema

config = context.config
OPTIONS = {
    "target_metadata": schema.metadata,
    "version_table": schema.VERSION_TABLE,
    "compare_type": True,
}


def run_offline() -> None:
    url = engine_mod.normalize_url(config.get_main_option("sqlalchemy.url") or "")
    context.configure(url=url, literal_binds=True, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_mod.create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            context.configure(connection=conn, **OPTIONS)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
