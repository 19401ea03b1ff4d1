"""Help-desk tickets and FAQ ratings, one transaction per operation.

The assistant opens a ticket when a conversation goes to staff (request_human,
two fallbacks in a row, "that did not help") and stays silent in that
conversation while the ticket is open; what the member writes meanwhile is
recorded on the ticket. Staff read the ticket, reply and close it. A staff
reply is stored undelivered; the channel that delivers it marks it delivered
(WeChat after the customer-service API took it, web/REST when the page polls).
A refused operation raises DomainError(code) and writes nothing.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanjian.backend.db import TransactionalService
from tuanjian.backend.models import RATING_VALUES, TICKET_REASONS, Rating, Ticket, TicketMessage
from tuanjian.backend.rules import DomainError
from tuanjian.text import is_control

MAX_REPLY_CHARS = 2000  # a staff reply, after stripping
MAX_MEMBER_CHARS = 10_000  # what the REST channel accepts
MAX_FAQ_CHARS = 64
TRANSCRIPT_WHO = ("member", "bot")


class TicketService(TransactionalService):
    # -- the assistant's side ---------------------------------------------

    def open_ticket(self, channel: str, sender_id: str, member_no: str | None, question: str | None,
                    transcript: list[dict[str, Any]], reason: str) -> int:
        """The new ticket's id, or the id of the conversation's open ticket."""
        _check_conversation(channel, sender_id)
        if member_no is not None and not (isinstance(member_no, str) and 0 < len(member_no) <= 32):
            raise DomainError("bad_member_no", "member number must be None or 1-32 characters")
        if question is None:
            question = ""
        if not isinstance(question, str):
            raise DomainError("bad_question", "question must be a string")
        if reason not in TICKET_REASONS:
            raise DomainError("bad_reason", f"reason must be one of {', '.join(TICKET_REASONS)}")
        lines = _transcript(transcript)
        now = self.clock()
        try:
            with self._transaction() as s:
                existing = _open_ticket_id(s, channel, sender_id)
                if existing is not None:
                    return existing
                ticket = Ticket(channel=channel, sender_id=sender_id, member_no=member_no, question=question,
                                transcript=lines, reason=reason, status="open", created_at=now)
                s.add(ticket)
                s.flush()
                return cast("int", ticket.id)
        except IntegrityError:
            # A concurrent open for the same conversation got in first (unique index).
            existing = self.open_ticket_of(channel, sender_id)
            if existing is None:
                raise
            return existing

    def open_ticket_of(self, channel: str, sender_id: str) -> int | None:
        with self._transaction() as s:
            return _open_ticket_id(s, channel, sender_id)

    def add_member_message(self, ticket_id: int, text: str) -> None:
        """What the member wrote while the ticket is open (control characters left out)."""
        if isinstance(text, str):
            text = "".join(c for c in text if not _control(c))
        text = _text(text, MAX_MEMBER_CHARS)
        now = self.clock()
        with self._transaction() as s:
            ticket = _ticket(s, ticket_id, lock=True)
            _refuse_closed(ticket)
            s.add(TicketMessage(ticket=ticket, author="member", text=text, at=now, delivered=True))

    def record_rating(self, channel: str, sender_id: str, faq: str, value: str) -> None:
        _check_conversation(channel, sender_id)
        if not (isinstance(faq, str) and 0 < len(faq) <= MAX_FAQ_CHARS):
            raise DomainError("bad_faq", f"faq must be 1-{MAX_FAQ_CHARS} characters")
        if value not in RATING_VALUES:
            raise DomainError("bad_rating", "rating must be 'up' or 'down'")
        now = self.clock()
        with self._transaction() as s:
            s.add(Rating(channel=channel, sender_id=sender_id, faq=faq, value=value, at=now))

    def undelivered_replies(self, channel: str, sender_id: str) -> list[str]:
        """The conversation's staff replies not yet delivered, oldest first; now marked delivered."""
        with self._transaction() as s:
            messages = s.execute(
                select(TicketMessage).join(Ticket)
                .where(Ticket.channel == channel, Ticket.sender_id == sender_id,
                       TicketMessage.author == "staff", TicketMessage.delivered.is_(False))
                .order_by(TicketMessage.id).with_for_update(of=TicketMessage)
            ).scalars().all()
            for message in messages:
                message.delivered = True
            return [message.text for message in messages]

    # -- the staff's side ---------------------------------------------------

    def list_open(self) -> list[dict[str, Any]]:
        """Open tickets, oldest first, without transcripts."""
        with self._transaction() as s:
            counts = (select(TicketMessage.ticket_id, func.count().label("n"))
                      .group_by(TicketMessage.ticket_id).subquery())
            rows = s.execute(
                select(Ticket, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.ticket_id == Ticket.id)
                .where(Ticket.status == "open").order_by(Ticket.created_at, Ticket.id)
            ).all()
            return [{**_summary(ticket), "messages": n} for ticket, n in rows]

    def get(self, ticket_id: int) -> dict[str, Any]:
        with self._transaction() as s:
            return _detail(_ticket(s, ticket_id))

    def staff_reply(self, ticket_id: int, text: str) -> int:
        """Store a reply to an open ticket, undelivered; its message id."""
        text = reply_text(text)
        now = self.clock()
        with self._transaction() as s:
            ticket = _ticket(s, ticket_id, lock=True)
            _refuse_closed(ticket)
            message = TicketMessage(ticket=ticket, author="staff", text=text, at=now, delivered=False)
            s.add(message)
            s.flush()
            return cast("int", message.id)

    def mark_delivered(self, message_id: int) -> None:
        with self._transaction() as s:
            message = s.get(TicketMessage, message_id) if _is_id(message_id) else None
            if message is None:
                raise DomainError("unknown_message", f"no message {message_id}")
            message.delivered = True

    def close(self, ticket_id: int) -> dict[str, Any]:
        now = self.clock()
        with self._transaction() as s:
            ticket = _ticket(s, ticket_id, lock=True)
            _refuse_closed(ticket)
            ticket.status, ticket.closed_at = "closed", now
            s.flush()
            return _detail(ticket)


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31


def _ticket(s: Session, ticket_id: int, lock: bool = False) -> Ticket:
    ticket = None
    if _is_id(ticket_id):
        query = select(Ticket).where(Ticket.id == ticket_id)
        ticket = s.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if ticket is None:
        raise DomainError("unknown_ticket", f"no ticket {ticket_id}")
    return cast("Ticket", ticket)


def _refuse_closed(ticket: Ticket) -> None:
    if ticket.status != "open":
        raise DomainError("ticket_closed", f"ticket {ticket.id} is closed")


def _open_ticket_id(s: Session, channel: str, sender_id: str) -> int | None:
    return cast("int | None", s.execute(select(Ticket.id).where(
        Ticket.channel == channel, Ticket.sender_id == sender_id, Ticket.status == "open")
    ).scalar_one_or_none())


def _check_conversation(channel: str, sender_id: str) -> None:
    if not (isinstance(channel, str) and 0 < len(channel) <= 32
            and isinstance(sender_id, str) and 0 < len(sender_id) <= 128):
        raise DomainError("bad_conversation", "channel must be 1-32 and sender id 1-128 characters")


def reply_text(text: Any) -> str:
    """A staff reply as it will be stored (stripped), or DomainError."""
    return _text(text, MAX_REPLY_CHARS)


def _control(char: str) -> bool:
    """A control character other than a line break or tab, or a lone surrogate."""
    return is_control(char) and char not in "\n\t\r"


def _text(text: Any, limit: int) -> str:
    if not isinstance(text, str):
        raise DomainError("bad_text", "text must be a string")
    text = text.strip()
    if not text:
        raise DomainError("empty_text", "text is empty")
    if len(text) > limit:
        raise DomainError("text_too_long", f"text is {len(text)} characters, at most {limit}")
    if any(map(_control, text)):
        raise DomainError("bad_text", "text holds control characters")
    return cast("str", text)


def _transcript(transcript: Any) -> list[dict[str, str | None]]:
    if not isinstance(transcript, list):
        raise DomainError("bad_transcript", "transcript must be a list")
    lines = []
    for line in transcript:
        if not (isinstance(line, dict) and line.get("who") in TRANSCRIPT_WHO
                and isinstance(line.get("text"), str)):
            raise DomainError("bad_transcript", "each line needs who ('member' or 'bot') and a text")
        at = line.get("at")
        if isinstance(at, datetime):
            at = at.isoformat()
        elif at is not None and not isinstance(at, str):
            raise DomainError("bad_transcript", "'at' must be an ISO time, a datetime or None")
        lines.append({"who": line["who"], "text": line["text"], "at": at})
    return lines


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _summary(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "channel": ticket.channel,
        "sender_id": ticket.sender_id,
        "member_no": ticket.member_no,
        "question": ticket.question,
        "reason": ticket.reason,
        "status": ticket.status,
        "created_at": _iso(ticket.created_at),
        "closed_at": _iso(ticket.closed_at),
    }


def _detail(ticket: Ticket) -> dict[str, Any]:
    return {
        **_summary(ticket),
        "transcript": list(ticket.transcript or []),
        "messages": [{"id": m.id, "author": m.author, "text": m.text, "at": _iso(m.at),
                      "delivered": m.delivered} for m in ticket.messages],
    }
