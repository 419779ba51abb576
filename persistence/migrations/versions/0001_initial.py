"""The initial schema: instances, history_events, inbox, timers, outbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(128)
APP_ID = sa.String(128)


def _pk_id() -> sa.Column:
    # BIGINT on PostgreSQL; INTEGER on SQLite so that it aliases the rowid.
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _instance_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["instance_id"], ["instances.instance_id"],
        name=f"fk_{table}_instance_id_instances", ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("app_id", APP_ID, nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("custom_status", sa.Text(), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("parent_instance_id", ID, nullable=True),
        sa.Column("parent_app_id", APP_ID, nullable=True),
        sa.Column("parent_task_id", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("start_at", nullable=True),
        _ts("completed_at", nullable=True),
        sa.Column("step_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("signed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name="pk_instances"),
    )
    op.create_index("ix_instances_parent_instance_id", "instances", ["parent_instance_id"])
    op.create_index("ix_instances_app_id_status", "instances", ["app_id", "status"])
    op.create_index("ix_instances_created_at", "instances", ["created_at"])

    op.create_table(
        "history_events",
        _pk_id(),
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _ts("timestamp"),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_history_events"),
        _instance_fk("history_events"),
        sa.UniqueConstraint(
            "instance_id", "generation", "sequence",
            name="uq_history_events_instance_id_generation_sequence",
        ),
    )

    op.create_table(
        "inbox",
        _pk_id(),
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("message_id", sa.String(256), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _ts("visible_at"),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        _instance_fk("inbox"),
        sa.UniqueConstraint("instance_id", "message_id", name="uq_inbox_instance_id_message_id"),
    )
    op.create_index("ix_inbox_visible_at", "inbox", ["visible_at"])

    op.create_table(
        "timers",
        _pk_id(),
        sa.Column("instance_id", ID, nullable=False),
        sa.Column("app_id", APP_ID, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("timer_id", sa.Integer(), nullable=False),
        _ts("fire_at"),
        sa.PrimaryKeyConstraint("id", name="pk_timers"),
        _instance_fk("timers"),
        sa.UniqueConstraint(
            "instance_id", "generation", "timer_id",
            name="uq_timers_instance_id_generation_timer_id",
        ),
    )
    op.create_index("ix_timers_fire_at", "timers", ["fire_at"])

    op.create_table(
        "outbox",
        _pk_id(),
        sa.Column("instance_id", ID, nullable=True),
        sa.Column("app_id", APP_ID, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedup_key", sa.String(256), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        _ts("created_at"),
        _ts("sent_at", nullable=True),
        _ts("lease_until", nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        _instance_fk("outbox"),
        sa.UniqueConstraint("instance_id", "dedup_key", name="uq_outbox_instance_id_dedup_key"),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_index("ix_outbox_lease_until", "outbox", ["lease_until"])


def downgrade() -> None:
    for table in ("outbox", "timers", "inbox", "history_events", "instances"):
        op.drop_table(table)
