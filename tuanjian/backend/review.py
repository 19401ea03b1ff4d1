"""The review inbox: member messages the assistant may have missed, and the
staff's decisions on them (the help desk's side of retraining).

`collect` reads Rasa's tracker store from where it last stopped and keeps each
candidate in `review_messages`. A member message is a candidate when
- it fell to the fallback (intent nlu_fallback, or answered by the suggestions
  or Rasa's fallback action): reason "fallback";
- its intent's confidence was under LOW_CONFIDENCE: "low_confidence";
- it is the question a 👎 rating was given on: "rated_down";
- it is the question a ticket was opened on (the slot handoff_ticket set): "ticket".
Messages that ask nothing (greetings, yes/no, ratings, 转人工), button clicks,
answers to a form's questions and messages written to staff while a ticket is
open are not candidates.

A decision (an intent, a new topic with a note, or dismissed) is stored with
who made it and when on every undecided message of the same wording (the
normalised text), in one transaction; a wording once decided is never shown
again. A refused decision raises DomainError and stores nothing.
"""
from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import groupby
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, aliased

from tuanjian.backend.db import TransactionalService, insert_missing
from tuanjian.backend.models import REVIEW_DECISIONS, ReviewCursor, ReviewMessage
from tuanjian.backend.rules import DomainError
from tuanjian.domain_names import (
    ACTION_HANDOFF_PENDING,
    DESTINATION_FORM,
    FAQ_PREFIX,
    HANDOFF_TICKET,
    NLU_FALLBACK,
    REVIEW_LABELS,
    VERIFICATION_FORM,
)
from tuanjian.text import is_control, normalize
from tuanjian.tracker_events import ACTION, EVENTS, SLOT, USER, entity_value, event_data

logger = logging.getLogger(__name__)

REASONS = ("fallback", "low_confidence", "rated_down", "ticket")
# Under this confidence an answer is worth a look, although it cleared the
# fallback threshold (0.5, config.yml).
LOW_CONFIDENCE = 0.7
RATING_INTENT = "rate_answer"
NOT_QUESTIONS = frozenset({"greet", "thank", "goodbye", "affirm", "deny", "non_text_message", "stop",
                           RATING_INTENT, "request_human", "not_helpful"})
# Replies that answer nothing: the suggestions after nlu_fallback, and Rasa's
# fallback when no rule applies (the report counts them as falling back too).
FALLBACK_ACTIONS = frozenset({"action_suggest_faqs", "action_default_fallback"})
FORMS = frozenset({VERIFICATION_FORM, DESTINATION_FORM})
SESSION_START = "action_session_start"
MAX_TEXT_CHARS = 500  # longer messages are not kept: they are no training examples
MAX_NOTE_CHARS = 500
MAX_WHO_CHARS = 64
SUGGESTIONS = 3
FIRST_READ_DAYS = 30  # the first collection reads the tracker store this far back
BATCH_EVENTS = 20_000
LOOKBACK_EVENTS = 40  # events read before a batch to find the question a rating or ticket is about
LOOKAHEAD_EVENTS = 500  # events read past a batch to find the replies to its last messages
# Each look reads again this many events before where the last one stopped:
# on PostgreSQL a turn may commit after a later id was read (inserts are idempotent).
REREAD_EVENTS = 2_000
CONTEXT_LINES = 6  # lines of the conversation shown before and after a message
PAGE_READ_EVENTS = 200_000  # events the staff page reads per look


def labels(domain_intents: Iterable[str]) -> list[str]:
    """The domain's intents a reviewer may give, in the domain's order."""
    return [intent for intent in domain_intents
            if intent.startswith(FAQ_PREFIX) or intent in REVIEW_LABELS]


def wording_of(text: str) -> str:
    """The text as the assistant's NLU reads it, punctuation and spaces left
    out: one decision per wording ('' when it has no words)."""
    normalised = normalize(text)
    words = "".join(c for c in normalised if not (c.isspace() or unicodedata.category(c).startswith("P")))
    return words if any(c.isalnum() for c in words) else ""


@dataclass
class _Candidate:
    sender_id: str
    event_id: int
    timestamp: float
    data: dict[str, Any]
    reasons: set[str] = field(default_factory=set)


@dataclass
class _Walk:
    candidates: dict[int, _Candidate] = field(default_factory=dict)
    last_question: _Candidate | None = None
    # The sender's last question before these events, read only when needed.
    earlier: Callable[[], _Candidate | None] = lambda: None

    def question(self) -> _Candidate | None:
        if self.last_question is None:
            self.last_question = self.earlier()
            self.earlier = lambda: None
        return self.last_question


def _replies(rows: Sequence[Any]) -> list[str | None]:
    """The action that followed each event (for a user event: its reply)."""
    replies: list[str | None] = [None] * len(rows)
    following = None
    for index in range(len(rows) - 1, -1, -1):
        replies[index] = following
        if rows[index].type_name == ACTION:
            following = rows[index].action_name
    return replies


def _walk(rows: Sequence[Any], walk: _Walk, upto: int | None = None) -> _Walk:
    """Find one sender's candidates in its events (in id order); events after
    `upto` only tell what answered the ones before."""
    action = None
    for row, reply in zip(rows, _replies(rows), strict=True):
        if upto is not None and row.id > upto:
            break
        if row.type_name == ACTION:
            action = row.action_name
        elif row.type_name == USER:
            _user_event(row, reply, walk)
        elif row.type_name == SLOT and action not in (None, SESSION_START):  # a new session carries slots over
            data = event_data(row.data)
            if data.get("name") == HANDOFF_TICKET and data.get("value") is not None:
                _add(walk, walk.question(), "ticket")
    return walk


def _user_event(row: Any, reply: str | None, walk: _Walk) -> None:
    if reply == ACTION_HANDOFF_PENDING:  # written to staff, not to the assistant
        return
    data = event_data(row.data)
    intent = (data.get("parse_data") or {}).get("intent") or {}
    name = intent.get("name") or row.intent_name
    if name == RATING_INTENT:
        if entity_value(row.data, "rating") == "down":
            _add(walk, walk.question(), "rated_down")
        return
    text = str(data.get("text") or "").strip()
    if not text or text.startswith("/") or name in NOT_QUESTIONS or reply in FORMS:
        return
    question = _Candidate(row.sender_id, row.id, row.timestamp or 0.0, data)
    walk.last_question = question
    if name == NLU_FALLBACK or reply in FALLBACK_ACTIONS:
        _add(walk, question, "fallback")
    elif isinstance(intent.get("confidence"), (int, float)) and intent["confidence"] < LOW_CONFIDENCE:
        _add(walk, question, "low_confidence")


def _add(walk: _Walk, question: _Candidate | None, reason: str) -> None:
    if question is not None:
        walk.candidates.setdefault(question.event_id, question).reasons.add(reason)


def _rows(connection: Connection, where: Any, order: Sequence[Any], limit: int | None = None) -> list[Any]:
    # Only user and slot events need their JSON.
    data = sa.case((EVENTS.c.type_name.in_((USER, SLOT)), EVENTS.c.data), else_=sa.null())
    query = (select(EVENTS.c.id, EVENTS.c.sender_id, EVENTS.c.type_name, EVENTS.c.timestamp,
                    EVENTS.c.intent_name, EVENTS.c.action_name, data.label("data"))
             .where(EVENTS.c.type_name.in_((USER, ACTION, SLOT)), where).order_by(*order).limit(limit))
    return list(connection.execute(query))


def _read_batch(connection: Connection, after: int, upto: int) -> list[_Candidate]:
    # Read a little past the batch: the reply to its last messages may be there.
    rows = _rows(connection, EVENTS.c.id.between(after + 1, upto + LOOKAHEAD_EVENTS),
                 (EVENTS.c.sender_id, EVENTS.c.id))
    found: list[_Candidate] = []
    for sender, events in groupby(rows, key=lambda row: row.sender_id):
        def earlier(sender: str = sender) -> _Candidate | None:
            # The question a rating or a ticket is about may be in an earlier batch.
            before = _rows(connection, sa.and_(EVENTS.c.sender_id == sender, EVENTS.c.id <= after),
                           (EVENTS.c.id.desc(),), LOOKBACK_EVENTS)
            return _walk(before[::-1], _Walk()).last_question

        found.extend(_walk(list(events), _Walk(earlier=earlier), upto).candidates.values())
    return found


def _printable(text: str) -> str:
    """The text without control characters and lone surrogates; line breaks and tabs become spaces."""
    return "".join(" " if c in "\r\n\t" else c for c in text if c in "\r\n\t" or not is_control(c))


def _message_values(candidate: _Candidate) -> dict[str, Any] | None:
    text = _printable(str(candidate.data.get("text") or "")).strip()
    wording = wording_of(text)
    if not wording or len(text) > MAX_TEXT_CHARS:
        return None
    parse = candidate.data.get("parse_data") or {}
    intent = parse.get("intent") or {}
    ranking = [r.get("name") for r in parse.get("intent_ranking") or [] if isinstance(r, dict)]
    confidence = intent.get("confidence")
    suggestions = [name for name in ranking if name and name != NLU_FALLBACK][:SUGGESTIONS]
    return {"text": text, "wording": wording[:600], "reasons": ",".join(sorted(candidate.reasons)),
            "intent": _printable(str(intent.get("name") or ""))[:64] or None,
            "suggestions": [_printable(str(name))[:64] for name in suggestions],
            "confidence": float(confidence) if isinstance(confidence, (int, float)) else None,
            "said_at": datetime.fromtimestamp(candidate.timestamp, timezone.utc)}


def _store_name(tracker: Engine) -> str:
    """Which tracker store: each has its own cursor and event ids (the report
    may read another one than the staff page)."""
    url = tracker.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Collected:
    added: int  # new candidates
    unread: int  # events of the tracker store not read yet


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


class ReviewService(TransactionalService):
    # -- collecting -----------------------------------------------------------

    def collect(self, tracker: Engine, most: int | None = None) -> Collected:
        """Read the tracker store's new events, `most` of them at a time (all by
        default), so that the staff page's first look at a month of a busy
        store answers quickly and the next look reads on."""
        if not sa.inspect(tracker).has_table(EVENTS.name):
            return Collected(0, 0)
        cursor = _store_name(tracker)
        with self._transaction() as s:  # read before the newest id: another look may move it meanwhile
            last = s.execute(select(ReviewCursor.last_event_id).where(ReviewCursor.name == cursor)).scalar()
        with tracker.connect() as connection:
            newest = connection.execute(select(func.max(EVENTS.c.id))).scalar()
            if newest is None:
                return Collected(0, 0)
            resume, known = self._start(connection, cursor, last, newest)
            after = max(0, resume - REREAD_EVENTS) if known else resume
            stop = newest if most is None else min(newest, resume + most)
            added = 0
            while after < stop:
                upto = min(stop, after + BATCH_EVENTS)
                added += self._store(_read_batch(connection, after, upto), cursor, upto)
                after = upto
        return Collected(added, newest - after)

    def _start(self, connection: Connection, cursor: str, last: int | None, newest: int) -> tuple[int, bool]:
        """Where to read on from, and whether a look stopped there before."""
        if last is not None and last <= newest:
            return last, True
        # First read, or the tracker store was emptied since: start FIRST_READ_DAYS back.
        since = (self.clock() - timedelta(days=FIRST_READ_DAYS)).timestamp()
        first = connection.execute(select(func.min(EVENTS.c.id)).where(EVENTS.c.timestamp >= since)).scalar()
        start = (first - 1) if first is not None else newest
        with self._transaction() as s:
            if last is None:
                insert_missing(s, ReviewCursor, {"name": cursor}, {"last_event_id": start})
            else:  # set back, unless another look has moved it meanwhile
                s.execute(update(ReviewCursor).where(ReviewCursor.name == cursor, ReviewCursor.last_event_id == last)
                          .values(last_event_id=start))
        return cast("int", start), False

    def _store(self, candidates: Iterable[_Candidate], cursor: str, upto: int) -> int:
        added = 0
        grown: dict[int, str] = {}  # message id -> its reasons, now more
        with self._transaction() as s:
            for candidate in candidates:
                values = _message_values(candidate)
                if values is None:
                    continue
                key = {"store": cursor, "sender_id": candidate.sender_id, "event_id": candidate.event_id}
                if insert_missing(s, ReviewMessage, key, values):
                    added += 1
                    continue
                number, text, reasons = s.execute(select(ReviewMessage.id, ReviewMessage.text, ReviewMessage.reasons)
                                                  .filter_by(**key)).one()
                if text != values["text"]:
                    # The tracker store was emptied and its ids used again: another message.
                    logger.warning("review: event %s of a conversation holds another message now; not kept",
                                   candidate.event_id)
                    continue
                merged = ",".join(sorted(set(reasons.split(",")) | candidate.reasons))
                if merged != reasons:
                    grown[number] = merged
            # In id order, as decide() locks rows: the two cannot deadlock.
            for number in sorted(grown):
                s.execute(update(ReviewMessage).where(ReviewMessage.id == number).values(reasons=grown[number])
                          .execution_options(synchronize_session=False))
            # Another replica may have read further meanwhile: the cursor only moves on.
            s.execute(update(ReviewCursor).where(ReviewCursor.name == cursor, ReviewCursor.last_event_id < upto)
                      .values(last_event_id=upto))
            insert_missing(s, ReviewCursor, {"name": cursor}, {"last_event_id": upto})
        return added

    # -- the inbox ------------------------------------------------------------

    def pending(self, limit: int = 500) -> dict[str, Any]:
        """Undecided wordings, newest first: {"total": n, "wordings": [...]} with
        each wording's newest message (its id is what a decision names) and
        how many messages share it."""
        with self._transaction() as s:
            undecided = _undecided()
            total = _awaiting(s)
            newest = (select(ReviewMessage.wording, func.max(ReviewMessage.id).label("id"),
                             func.count().label("count"))
                      .where(undecided).group_by(ReviewMessage.wording).subquery())
            rows = s.execute(select(ReviewMessage, newest.c.count)
                             .join(newest, ReviewMessage.id == newest.c.id)
                             .order_by(ReviewMessage.said_at.desc(), ReviewMessage.id.desc()).limit(limit)).all()
            reasons = self._reasons_of(s, [message.wording for message, _ in rows])
            wordings = [{**_summary(message), "count": count, "reasons": reasons.get(message.wording, [])}
                        for message, count in rows]
        return {"total": total, "wordings": wordings}

    @staticmethod
    def _reasons_of(s: Session, wordings: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, set[str]] = {}
        for n in range(0, len(wordings), 500):
            query = (select(ReviewMessage.wording, ReviewMessage.reasons)
                     .where(ReviewMessage.decision.is_(None), ReviewMessage.wording.in_(wordings[n:n + 500])))
            for wording, reasons in s.execute(query):
                found.setdefault(wording, set()).update(reasons.split(","))
        return {w: [r for r in REASONS if r in found[w]] for w in found}

    def get(self, message_id: int, tracker: Engine | None = None) -> dict[str, Any]:
        """One message, with the conversation around it when the tracker store is given."""
        with self._transaction() as s:
            message = _message(s, message_id)
            result = {**_summary(message), "reasons": message.reasons.split(","),
                      **_decision(message)}
            sender, event_id = message.sender_id, message.event_id
        if tracker is not None:
            result["conversation"] = _conversation_around(tracker, sender, event_id)
        return result

    def decide(self, message_id: int, decision: Any, who: str, intents: Collection[str],
               label: Any = None, note: Any = None) -> dict[str, Any]:
        """Decide a message and every undecided message of its wording.

        decision "intent" needs `label` from `intents`; "new_topic" a note;
        "dismissed" nothing. A note is optional otherwise (at most MAX_NOTE_CHARS)."""
        if decision not in REVIEW_DECISIONS:
            raise DomainError("bad_decision", f"decision must be one of {', '.join(REVIEW_DECISIONS)}")
        if decision == "intent" and (not isinstance(label, str) or label not in intents):
            raise DomainError("unknown_intent", f"intent {str(label)[:64]!r} is not one of the domain's")
        if decision != "intent" and label is not None:
            raise DomainError("bad_decision", "only an 'intent' decision takes an intent")
        if note is not None and not isinstance(note, str):
            raise DomainError("bad_note", "note must be a string")
        note = (note or "").strip() or None
        if note is not None and any(is_control(c) and c != "\n" for c in note):
            raise DomainError("bad_note", "note holds control characters")
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise DomainError("note_too_long", f"note is {len(note)} characters, at most {MAX_NOTE_CHARS}")
        if decision == "new_topic" and note is None:
            raise DomainError("note_required", "a new topic needs a note saying what it is")
        if not (isinstance(who, str) and 0 < len(who) <= MAX_WHO_CHARS):
            raise DomainError("bad_reviewer", f"reviewer must be 1-{MAX_WHO_CHARS} characters")
        now = self.clock()
        with self._transaction() as s:
            _take_the_write_lock(s)
            wording = _message(s, message_id).wording
            # Every row of the wording, locked in one order: two reviewers deciding
            # it at once take turns (PostgreSQL), and the second finds it decided.
            rows = s.execute(select(ReviewMessage.decision).where(ReviewMessage.wording == wording)
                             .order_by(ReviewMessage.id).with_for_update()).scalars().all()
            if any(decision is not None for decision in rows):
                raise DomainError("already_decided", f"message {message_id} (or its wording) is decided")
            decided = s.execute(
                update(ReviewMessage)
                .where(ReviewMessage.wording == wording, ReviewMessage.decision.is_(None))
                .values(decision=decision, label=label if decision == "intent" else None, note=note,
                        decided_by=who, decided_at=now)
                .execution_options(synchronize_session=False)).rowcount
            if not decided:  # SQLite takes no row locks: another reviewer was first
                raise DomainError("already_decided", f"message {message_id} (or its wording) is decided")
        return {"id": message_id, "decision": decision, "label": label if decision == "intent" else None,
                "note": note, "decided_by": who, "decided_at": _iso(now), "messages": decided}

    # -- export and figures ---------------------------------------------------

    def labelled(self) -> list[dict[str, Any]]:
        """Every wording given an intent: {"text", "intent", "decided_at"}, oldest decision first."""
        with self._transaction() as s:
            rows = s.execute(select(func.min(ReviewMessage.text), ReviewMessage.label,
                                    func.min(ReviewMessage.decided_at))
                             .where(ReviewMessage.decision == "intent")
                             .group_by(ReviewMessage.wording, ReviewMessage.label)
                             .order_by(func.min(ReviewMessage.decided_at), ReviewMessage.wording)).all()
        return [{"text": text, "intent": label, "decided_at": at} for text, label, at in rows]

    def new_topics(self) -> list[dict[str, Any]]:
        with self._transaction() as s:
            rows = s.execute(select(ReviewMessage.text, ReviewMessage.note, ReviewMessage.decided_by)
                             .where(ReviewMessage.decision == "new_topic")
                             .order_by(ReviewMessage.decided_at)).all()
        return [{"text": text, "note": note, "decided_by": who} for text, note, who in rows]

    def figures(self, start: datetime, end: datetime) -> dict[str, Any]:
        """For the report: wordings awaiting review now, and the decisions made in [start, end)."""
        with self._transaction() as s:
            awaiting = _awaiting(s)
            rows = s.execute(select(ReviewMessage.decision, ReviewMessage.label,
                                    func.count(func.distinct(ReviewMessage.wording)))
                             .where(ReviewMessage.decided_at >= start, ReviewMessage.decided_at < end)
                             .group_by(ReviewMessage.decision, ReviewMessage.label)).all()
        per_intent = {label: count for decision, label, count in rows if decision == "intent"}
        return {"awaiting": awaiting,
                "labelled": dict(sorted(per_intent.items(), key=lambda kv: (-kv[1], kv[0]))),
                "new_topics": sum(c for d, _, c in rows if d == "new_topic"),
                "dismissed": sum(c for d, _, c in rows if d == "dismissed")}


def _take_the_write_lock(s: Session) -> None:
    """On SQLite, take the database's write lock first: a second reviewer then
    waits for the first (up to the busy timeout) and finds the wording decided,
    rather than failing its write with "database is locked". PostgreSQL locks
    the rows instead (FOR UPDATE)."""
    if s.get_bind().dialect.name == "sqlite":
        s.execute(update(ReviewCursor).where(sa.false()).values(last_event_id=ReviewCursor.last_event_id))


def _undecided() -> Any:
    """A message no one has decided, whose wording no one has decided either."""
    decided = aliased(ReviewMessage)
    return sa.and_(ReviewMessage.decision.is_(None),
                   ~sa.exists().where(decided.wording == ReviewMessage.wording, decided.decision.is_not(None)))


def _awaiting(s: Session) -> int:
    """How many wordings await review."""
    return int(s.execute(select(func.count(func.distinct(ReviewMessage.wording))).where(_undecided())).scalar() or 0)


def _message(s: Session, message_id: int) -> ReviewMessage:
    message = s.get(ReviewMessage, message_id)
    if message is None:
        raise DomainError("unknown_message", f"no message {message_id}")
    return cast("ReviewMessage", message)


def _summary(message: ReviewMessage) -> dict[str, Any]:
    return {"id": message.id, "text": message.text, "intent": message.intent,
            "confidence": message.confidence, "suggestions": list(message.suggestions or []),
            "said_at": _iso(message.said_at)}


def _decision(message: ReviewMessage) -> dict[str, Any]:
    return {"decision": message.decision, "label": message.label, "note": message.note,
            "decided_by": message.decided_by, "decided_at": _iso(message.decided_at)}


def _conversation_around(tracker: Engine, sender_id: str, event_id: int) -> list[dict[str, Any]]:
    """The member's and the assistant's lines before and after the message."""
    lines = sa.and_(EVENTS.c.sender_id == sender_id, EVENTS.c.type_name.in_((USER, "bot")))
    columns = (EVENTS.c.id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
    with tracker.connect() as connection:
        before = connection.execute(select(*columns).where(lines, EVENTS.c.id < event_id)
                                    .order_by(EVENTS.c.id.desc()).limit(CONTEXT_LINES)).all()
        after = connection.execute(select(*columns).where(lines, EVENTS.c.id >= event_id)
                                   .order_by(EVENTS.c.id).limit(CONTEXT_LINES + 1)).all()
    conversation = []
    for row in [*before[::-1], *after]:
        text = str(event_data(row.data).get("text") or "").strip()
        if text:
            at = datetime.fromtimestamp(row.timestamp, timezone.utc) if row.timestamp else None
            conversation.append({"who": "member" if row.type_name == USER else "bot", "text": text,
                                 "at": _iso(at), "this": row.id == event_id})
    return conversation
