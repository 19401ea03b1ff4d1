"""Transfer backend schema: organisations, members, requests, approval steps, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def string_enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True,
                   length=max(len(v) for v in values))


def timestamp():
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("level", string_enum("level", "团委", "团工委", "团总支", "团支部"), nullable=False),
        sa.Column("province", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["organisations.id"], name=op.f("fk_organisations_parent_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_no", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("phone_last4", sa.String(4), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], name=op.f("fk_members_organisation_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("member_no", name=op.f("uq_members_member_no")),
    )
    op.create_table(
        "transfer_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", string_enum("kind", "member", "admin", "batch"), nullable=False),
        sa.Column("from_org_id", sa.Integer(), nullable=False),
        sa.Column("to_org_id", sa.Integer(), nullable=False),
        sa.Column("status", string_enum("status", "pending", "awaiting_assignment", "completed", "withdrawn",
                                        "terminated"), nullable=False),
        sa.Column("termination_reason", sa.Text(), nullable=True),
        sa.Column("created_at", timestamp(), nullable=False),
        sa.Column("closed_at", timestamp(), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_transfer_requests_member_id_members")),
        sa.ForeignKeyConstraint(["from_org_id"], ["organisations.id"], name=op.f("fk_transfer_requests_from_org_id_organisations")),
        sa.ForeignKeyConstraint(["to_org_id"], ["organisations.id"], name=op.f("fk_transfer_requests_to_org_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_requests")),
    )
    op.create_index(op.f("ix_transfer_requests_member_id"), "transfer_requests", ["member_id"])
    op.create_table(
        "approval_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("received_at", timestamp(), nullable=True),
        sa.Column("decided_at", timestamp(), nullable=True),
        sa.Column("decision", string_enum("decision", "approved", "rejected", "default_approved"), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["transfer_requests.id"], name=op.f("fk_approval_steps_request_id_transfer_requests")),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], name=op.f("fk_approval_steps_organisation_id_organisations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_steps")),
        sa.UniqueConstraint("request_id", "position", name="uq_approval_steps_request_position"),
    )
    op.create_table(
        "transfer_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", timestamp(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["transfer_requests.id"], name=op.f("fk_transfer_events_request_id_transfer_requests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_events")),
    )
    op.create_index(op.f("ix_transfer_events_request_id"), "transfer_events", ["request_id"])


def downgrade() -> None:
    op.drop_table("transfer_events")
    op.drop_table("approval_steps")
    op.drop_table("transfer_requests")
    op.drop_table("members")
    op.drop_table("organisations")
