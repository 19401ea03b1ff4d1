"""Closed conversations (a restarted web session's id is revoked); throttle keys
of member numbers become keyed digests, so the rows keyed by the number as
typed are dropped (they live 15 minutes at most anyway).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "closed_conversations",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "external_id", name=op.f("pk_closed_conversations")),
    )
    op.create_index(op.f("ix_closed_conversations_closed_at"), "closed_conversations", ["closed_at"])
    op.execute(sa.text("DELETE FROM verification_throttles WHERE key LIKE 'member:%'"))


def downgrade() -> None:
    op.drop_index(op.f("ix_closed_conversations_closed_at"), table_name="closed_conversations")
    op.drop_table("closed_conversations")
