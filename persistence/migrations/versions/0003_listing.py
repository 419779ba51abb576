"""Indexes for keyset pages of instances: (created_at, instance_id) replaces (created_at);
(name, created_at) serves a list filtered by workflow name.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_instances_created_at", table_name="instances")
    op.create_index("ix_instances_created_at_instance_id", "instances", ["created_at", "instance_id"])
    op.create_index("ix_instances_name_created_at", "instances", ["name", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_instances_name_created_at", table_name="instances")
    op.drop_index("ix_instances_created_at_instance_id", table_name="instances")
    op.create_index("ix_instances_created_at", "instances", ["created_at"])
