"""Channel bindings: a channel's user id (WeChat OpenID) bound to a member.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_channel_bindings_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_bindings")),
        sa.UniqueConstraint("channel", "external_id", name="uq_channel_bindings_channel_external_id"),
    )
    op.create_index(op.f("ix_channel_bindings_member_id"), "channel_bindings", ["member_id"])


def downgrade() -> None:
    op.drop_table("channel_bindings")
