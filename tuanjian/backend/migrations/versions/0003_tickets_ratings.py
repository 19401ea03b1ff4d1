"""Help desk: tickets handed to staff, their messages, and FAQ ratings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def string_enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True,
                   length=max(len(v) for v in values))


def timestamp():
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("member_no", sa.String(32), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("reason", string_enum("ticket_reason", "request_human", "fallbacks", "not_helpful"),
                  nullable=False),
        sa.Column("status", string_enum("ticket_status", "open", "closed"), nullable=False),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("closed_at", timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    op.create_index("uq_tickets_open_conversation", "tickets", ["channel", "sender_id"], unique=True,
                    postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author", string_enum("message_author", "member", "staff"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_messages_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_messages")),
    )
    op.create_index(op.f("ix_ticket_messages_ticket_id"), "ticket_messages", ["ticket_id"])
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sender_id", sa.String(128), nullable=False),
        sa.Column("faq", sa.String(64), nullable=False),
        sa.Column("value", string_enum("rating_value", "up", "down"), nullable=False),
        sa.Column("at", timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
    )
    op.create_index(op.f("ix_ratings_faq"), "ratings", ["faq"])


def downgrade() -> None:
    op.drop_table("ratings")
    op.drop_table("ticket_messages")
    op.drop_table("tickets")
