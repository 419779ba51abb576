"""The schema made by the migrations is exactly ``schema.metadata`` (both dialects)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from persistence import schema
from persistence.store import Store


def diffs(store: Store, metadata: sa.MetaData) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": schema.VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(context, metadata))


def test_migrations_produce_the_metadata(store: Store) -> None:
    assert diffs(store, schema.metadata) == []


def test_the_comparison_would_see_a_difference(store: Store) -> None:
    changed = sa.MetaData(naming_convention=schema.NAMING_CONVENTION)
    for table in schema.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["inbox"].append_column(sa.Column("extra", sa.Integer, nullable=True))
    sa.Index("ix_outbox_kind", changed.tables["outbox"].c.kind)
    found = diffs(store, changed)
    assert sorted(d[0] for d in found) == ["add_column", "add_index"]


def test_migrate_is_idempotent_and_at_head(store: Store) -> None:
    store.migrate()
    store.migrate()
    with store.engine.connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM {schema.VERSION_TABLE}")).all()
    assert versions == [("0005",)]


@pytest.mark.integration
def test_postgres_urls_without_a_driver_are_accepted(postgres_db_url: str) -> None:
    for prefix in ("postgres://", "postgresql://"):
        with Store(postgres_db_url.replace("postgresql+psycopg://", prefix)) as store:
            assert store.url.startswith("postgresql+psycopg://")
            assert store.dialect == "postgresql"
            assert store.get_instance("nope") is None
