"""Declarative models of organisations, members and transfer requests;
help-desk tickets and FAQ ratings."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import declarative_base, relationship

from tuanjian.backend import rules

TICKET_STATUSES = ("open", "closed")
TICKET_REASONS = ("request_human", "fallbacks", "not_helpful")
MESSAGE_AUTHORS = ("member", "staff")
RATING_VALUES = ("up", "down")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# SQLAlchemy 1.4 ships no type information: its classes are Any to mypy.
Base: Any = declarative_base(metadata=MetaData(naming_convention=NAMING))


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC in and out; SQLite stores no offset, so add it back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def string_enum(values: Sequence[str], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint (no native PostgreSQL enum type)."""
    return Enum(*values, name=name, native_enum=False, create_constraint=True,
                length=max(len(v) for v in values))


class Organisation(Base):
    __tablename__ = "organisations"

    id = Column(Integer, primary_key=True)
    name = Column(String(128), nullable=False, unique=True)
    level = Column(string_enum(rules.LEVELS, "level"), nullable=False)
    province = Column(String(32), nullable=False)
    parent_id = Column(Integer, ForeignKey("organisations.id"), nullable=True)
    contact = Column(Text, nullable=False)

    parent = relationship("Organisation", remote_side=[id])


class Member(Base):
    __tablename__ = "members"

    id = Column(Integer, primary_key=True)
    member_no = Column(String(32), nullable=False, unique=True)
    name = Column(String(64), nullable=False)
    phone_last4 = Column(String(4), nullable=False)
    organisation_id = Column(Integer, ForeignKey("organisations.id"), nullable=False)
    birth_year = Column(Integer, nullable=True)

    organisation = relationship(Organisation)


class TransferRequest(Base):
    __tablename__ = "transfer_requests"

    id = Column(Integer, primary_key=True)
    member_id = Column(Integer, ForeignKey("members.id"), nullable=False, index=True)
    kind = Column(string_enum(rules.KINDS, "kind"), nullable=False)
    from_org_id = Column(Integer, ForeignKey("organisations.id"), nullable=False)
    to_org_id = Column(Integer, ForeignKey("organisations.id"), nullable=False)
    status = Column(string_enum(rules.STATUSES, "status"), nullable=False)
    termination_reason = Column(Text, nullable=True)
    created_at = Column(UTCDateTime, nullable=False)
    closed_at = Column(UTCDateTime, nullable=True)

    member = relationship(Member)
    from_org = relationship(Organisation, foreign_keys=[from_org_id])
    to_org = relationship(Organisation, foreign_keys=[to_org_id])
    steps = relationship("ApprovalStep", order_by="ApprovalStep.position",
                         back_populates="request", cascade="all, delete-orphan")
    events = relationship("TransferEvent", order_by="TransferEvent.id",
                          back_populates="request", cascade="all, delete-orphan")


class ApprovalStep(Base):
    __tablename__ = "approval_steps"
    __table_args__ = (UniqueConstraint("request_id", "position", name="uq_approval_steps_request_position"),)

    id = Column(Integer, primary_key=True)
    request_id = Column(Integer, ForeignKey("transfer_requests.id"), nullable=False)
    position = Column(Integer, nullable=False)
    organisation_id = Column(Integer, ForeignKey("organisations.id"), nullable=False)
    # NULL until known: a step that received the request through a default
    # approval gets its time written when the request is next settled.
    received_at = Column(UTCDateTime, nullable=True)
    decided_at = Column(UTCDateTime, nullable=True)
    decision = Column(string_enum(rules.DECISIONS, "decision"), nullable=True)

    request = relationship(TransferRequest, back_populates="steps")
    organisation = relationship(Organisation)


class TransferEvent(Base):
    __tablename__ = "transfer_events"

    id = Column(Integer, primary_key=True)
    request_id = Column(Integer, ForeignKey("transfer_requests.id"), nullable=False, index=True)
    at = Column(UTCDateTime, nullable=False)
    kind = Column(String(32), nullable=False)
    detail = Column(JSON, nullable=True)

    request = relationship(TransferRequest, back_populates="events")


class ChannelBinding(Base):
    """A chat channel's user id (a WeChat OpenID) bound to a verified member."""

    __tablename__ = "channel_bindings"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_channel_bindings_channel_external_id"),
    )

    id = Column(Integer, primary_key=True)
    channel = Column(String(32), nullable=False)
    external_id = Column(String(128), nullable=False)
    member_id = Column(Integer, ForeignKey("members.id"), nullable=False, index=True)
    created_at = Column(UTCDateTime, nullable=False)

    member = relationship(Member)


class Ticket(Base):
    """A conversation handed to staff; the assistant stays silent while it is open."""

    __tablename__ = "tickets"
    __table_args__ = (
        # At most one open ticket per conversation, also under concurrent opens.
        Index("uq_tickets_open_conversation", "channel", "sender_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
    )

    id = Column(Integer, primary_key=True)
    channel = Column(String(32), nullable=False)
    sender_id = Column(String(128), nullable=False)
    member_no = Column(String(32), nullable=True)  # when the member had verified
    question = Column(Text, nullable=False)
    transcript = Column(JSON, nullable=False)  # [{"who": "member"|"bot", "text", "at"}]
    reason = Column(string_enum(TICKET_REASONS, "ticket_reason"), nullable=False)
    status = Column(string_enum(TICKET_STATUSES, "ticket_status"), nullable=False)
    created_at = Column(UTCDateTime, nullable=False)
    closed_at = Column(UTCDateTime, nullable=True)

    messages = relationship("TicketMessage", order_by="TicketMessage.id", back_populates="ticket")


class TicketMessage(Base):
    """A member's message while the ticket is open, or a staff reply."""

    __tablename__ = "ticket_messages"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id"), nullable=False, index=True)
    author = Column(string_enum(MESSAGE_AUTHORS, "message_author"), nullable=False)
    text = Column(Text, nullable=False)
    at = Column(UTCDateTime, nullable=False)
    delivered = Column(Boolean, nullable=False)

    ticket = relationship(Ticket, back_populates="messages")


class Rating(Base):
    """👍/👎 on an FAQ answer, with the conversation it was given in."""

    __tablename__ = "ratings"

    id = Column(Integer, primary_key=True)
    channel = Column(String(32), nullable=False)
    sender_id = Column(String(128), nullable=False)
    faq = Column(String(64), nullable=False, index=True)
    value = Column(string_enum(RATING_VALUES, "rating_value"), nullable=False)
    at = Column(UTCDateTime, nullable=False)


class Verification(Base):
    """A conversation in which the member proved who they are (number + phone digits).

    Keyed by the conversation (channel, the channel's own user id); valid only
    in the Rasa session it was made in (`session_key`) and until it has been
    idle too long. The actions read this row, never a slot, to decide whose
    transfer a conversation may see."""

    __tablename__ = "verifications"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_verifications_channel_external_id"),
    )

    id = Column(Integer, primary_key=True)
    channel = Column(String(32), nullable=False)
    external_id = Column(String(128), nullable=False)
    member_id = Column(Integer, ForeignKey("members.id"), nullable=False, index=True)
    session_key = Column(String(64), nullable=False)
    verified_at = Column(UTCDateTime, nullable=False)
    last_seen_at = Column(UTCDateTime, nullable=False)

    member = relationship(Member)


class VerificationThrottle(Base):
    """Failed verifications counted per member number or per client, and the lock they caused.

    `key` is "member:<keyed digest of the number as typed>" (numbers that do
    not exist are counted the same way, so a lock reveals nothing) or
    "client:<client key>"."""

    __tablename__ = "verification_throttles"

    key = Column(String(200), primary_key=True)
    failures = Column(Integer, nullable=False)
    window_started_at = Column(UTCDateTime, nullable=False)
    locked_until = Column(UTCDateTime, nullable=True)


class ClosedConversation(Base):
    """A conversation its member ended ("重新开始" on the web page): the id it had
    takes no more messages, although its signed token has not expired yet."""

    __tablename__ = "closed_conversations"

    channel = Column(String(32), primary_key=True)
    external_id = Column(String(128), primary_key=True)
    closed_at = Column(UTCDateTime, nullable=False, index=True)


REVIEW_DECISIONS = ("intent", "new_topic", "dismissed")


class ReviewMessage(Base):
    """A member message the assistant may have missed (tuanjian.backend.review),
    and the staff's decision on it: who made it and when."""

    __tablename__ = "review_messages"
    __table_args__ = (
        UniqueConstraint("store", "sender_id", "event_id", name="uq_review_messages_store_sender_id_event_id"),
        Index("ix_review_messages_decision_said_at", "decision", "said_at"),
    )

    id = Column(Integer, primary_key=True)
    store = Column(String(32), nullable=False)  # which tracker store (review._store_name)
    event_id = Column(Integer, nullable=False)  # the user event's id in that tracker store
    sender_id = Column(String(255), nullable=False)
    text = Column(Text, nullable=False)  # as the tracker store keeps it (verification digits masked)
    wording = Column(String(600), nullable=False, index=True)  # the normalised text: one decision per wording
    reasons = Column(String(64), nullable=False)  # comma-separated, review.REASONS
    intent = Column(String(64), nullable=True)  # what the assistant understood
    confidence = Column(Float, nullable=True)
    suggestions = Column(JSON, nullable=False)  # the assistant's top intents, most likely first
    said_at = Column(UTCDateTime, nullable=False)
    decision = Column(string_enum(REVIEW_DECISIONS, "review_decision"), nullable=True)
    label = Column(String(64), nullable=True)  # the intent given, when decision == "intent"
    note = Column(Text, nullable=True)
    decided_by = Column(String(64), nullable=True)
    decided_at = Column(UTCDateTime, nullable=True)


class ReviewCursor(Base):
    """How far the review inbox has read the tracker store (the last event id)."""

    __tablename__ = "review_cursors"

    name = Column(String(32), primary_key=True)
    last_event_id = Column(Integer, nullable=False)
