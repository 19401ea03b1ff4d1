"""The review inbox: messages the assistant may have missed, with the staff's decisions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store", sa.String(32), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("wording", sa.String(600), nullable=False),
        sa.Column("reasons", sa.String(64), nullable=False),
        sa.Column("intent", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("suggestions", sa.JSON(), nullable=False),
        sa.Column("said_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.Enum("intent", "new_topic", "dismissed", name="review_decision",
                                      native_enum=False, create_constraint=True, length=9), nullable=True),
        sa.Column("label", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_messages")),
        sa.UniqueConstraint("store", "sender_id", "event_id", name="uq_review_messages_store_sender_id_event_id"),
    )
    op.create_index("ix_review_messages_decision_said_at", "review_messages", ["decision", "said_at"])
    op.create_index(op.f("ix_review_messages_wording"), "review_messages", ["wording"])
    op.create_table(
        "review_cursors",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_review_cursors")),
    )


def downgrade() -> None:
    op.drop_table("review_cursors")
    op.drop_index(op.f("ix_review_messages_wording"), table_name="review_messages")
    op.drop_index("ix_review_messages_decision_said_at", table_name="review_messages")
    op.drop_table("review_messages")
