"""Server-side verifications and the throttle on failed ones.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def timestamp():
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("session_key", sa.String(64), nullable=False),
        sa.Column("verified_at", timestamp(), nullable=False),
        sa.Column("last_seen_at", timestamp(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_verifications_member_id_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verifications")),
        sa.UniqueConstraint("channel", "external_id", name="uq_verifications_channel_external_id"),
    )
    op.create_index(op.f("ix_verifications_member_id"), "verifications", ["member_id"])
    op.create_table(
        "verification_throttles",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", timestamp(), nullable=False),
        sa.Column("locked_until", timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_verification_throttles")),
    )


def downgrade() -> None:
    op.drop_table("verification_throttles")
    op.drop_table("verifications")
