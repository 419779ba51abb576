"""Drop columns nothing reads: `instances.version` (the workflow version lives in the
ExecutionStarted/OrchestratorStarted events) and `history_events.signature` (history is
signed per batch, in `history_signatures`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("version")
    with op.batch_alter_table("history_events") as batch:
        batch.drop_column("signature")


def downgrade() -> None:
    op.add_column("history_events", sa.Column("signature", sa.LargeBinary(), nullable=True))
    op.add_column("instances", sa.Column("version", sa.String(64), nullable=True))
