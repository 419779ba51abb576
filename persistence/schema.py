"""The tables, as SQLAlchemy Core metadata.  The migrations must produce exactly this.

Every table but ``instances`` hangs off an instance with ``ON DELETE CASCADE`` as a
safety net; the store still deletes rows explicitly so it can count them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from persistence import records

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

VERSION_TABLE = "ledgerflow_alembic_version"

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes.

    SQLite has no time zones: values are stored as naive UTC text, which also keeps the
    text order equal to time order for range queries.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = records.as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return records.as_utc(value)


ID = sa.String(128)
APP_ID = sa.String(128)


def _instance_fk() -> sa.ForeignKey:
    return sa.ForeignKey("instances.instance_id", ondelete="CASCADE")


instances = sa.Table(
    "instances",
    metadata,
    sa.Column("instance_id", ID, primary_key=True),
    sa.Column("app_id", APP_ID, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("input", sa.Text, nullable=True),
    sa.Column("output", sa.Text, nullable=True),
    sa.Column("custom_status", sa.Text, nullable=True),
    sa.Column("failure", sa.Text, nullable=True),  # JSON text
    sa.Column("generation", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("parent_instance_id", ID, nullable=True),
    sa.Column("parent_app_id", APP_ID, nullable=True),
    sa.Column("parent_task_id", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("start_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    # Incremented by every update_instance() in a step: a fencing counter.
    sa.Column("step_count", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("signed", sa.Boolean, nullable=False, server_default=sa.false()),
    # History signing: digest of the last batch signature and how many events are signed,
    # so that a tail cut (last events and signatures deleted together) is detected.
    sa.Column("signature_head", sa.LargeBinary, nullable=True),
    sa.Column("signed_events", sa.Integer, nullable=False, server_default=sa.text("0")),
    # The W3C traceparent of the span that created the instance: every later step, timer
    # and activity of it continues that trace (telemetry.tracing). NULL: tracing was off.
    sa.Column("trace_context", sa.String(64), nullable=True),
    sa.Index(None, "parent_instance_id"),
    sa.Index(None, "app_id", "status"),
    # the dashboard's keyset pages (persistence/listing.py), by creation and by name
    sa.Index(None, "created_at", "instance_id"),
    sa.Index(None, "name", "created_at"),
)

history_events = sa.Table(
    "history_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", ID, _instance_fk(), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("timestamp", UTCDateTime, nullable=False),
    # A duplicate append fails instead of forking history.
    sa.UniqueConstraint("instance_id", "generation", "sequence"),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", ID, _instance_fk(), nullable=False),
    sa.Column("message_id", sa.String(256), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("visible_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # A redelivered message is dropped, not applied twice.
    sa.UniqueConstraint("instance_id", "message_id"),
    sa.Index(None, "visible_at"),
)

timers = sa.Table(
    "timers",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", ID, _instance_fk(), nullable=False),
    sa.Column("app_id", APP_ID, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("timer_id", sa.Integer, nullable=False),
    sa.Column("fire_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("instance_id", "generation", "timer_id"),
    sa.Index(None, "fire_at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", ID, _instance_fk(), nullable=True),
    sa.Column("app_id", APP_ID, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("dedup_key", sa.String(256), nullable=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.UniqueConstraint("instance_id", "dedup_key"),
    sa.Index(None, "created_at"),
    sa.Index(None, "lease_until"),
)

# Certificates that signed history batches, shared by every instance (referenced by id).
history_certificates = sa.Table(
    "history_certificates",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("fingerprint", sa.LargeBinary, nullable=False),
    sa.Column("der", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("fingerprint"),
)

# One row per signed batch of history events (see security/chain.py).
history_signatures = sa.Table(
    "history_signatures",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("instance_id", ID, _instance_fk(), nullable=False),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("start_sequence", sa.Integer, nullable=False),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("previous_digest", sa.LargeBinary, nullable=False),
    sa.Column("events_digest", sa.LargeBinary, nullable=False),
    sa.Column("cert_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("signed_at", UTCDateTime, nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("instance_id", "generation", "start_sequence"),
)

# Tables holding rows of one instance, children first (the delete order).
INSTANCE_TABLES: tuple[sa.Table, ...] = (history_events, history_signatures, inbox, timers, outbox, instances)
