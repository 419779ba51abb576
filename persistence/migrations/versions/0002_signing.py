"""History signing: certificates, batch signatures, and the chain head on the instance.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _pk_id() -> sa.Column:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def upgrade() -> None:
    op.add_column("instances", sa.Column("signature_head", sa.LargeBinary(), nullable=True))
    op.add_column("instances", sa.Column("signed_events", sa.Integer(), server_default=sa.text("0"),
                                         nullable=False))
    op.create_table(
        "history_certificates",
        _pk_id(),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_certificates"),
        sa.UniqueConstraint("fingerprint", name="uq_history_certificates_fingerprint"),
    )
    op.create_table(
        "history_signatures",
        _pk_id(),
        sa.Column("instance_id", sa.String(128), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("start_sequence", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("previous_digest", sa.LargeBinary(), nullable=False),
        sa.Column("events_digest", sa.LargeBinary(), nullable=False),
        sa.Column("cert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_history_signatures"),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.instance_id"],
                                name="fk_history_signatures_instance_id_instances", ondelete="CASCADE"),
        sa.UniqueConstraint("instance_id", "generation", "start_sequence",
                            name="uq_history_signatures_instance_id_generation_start_sequence"),
    )


def downgrade() -> None:
    op.drop_table("history_signatures")
    op.drop_table("history_certificates")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("signed_events")
        batch.drop_column("signature_head")
