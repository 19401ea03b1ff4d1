"""The report's figures, computed from the tracker store and the help-desk tables.

Everything here is plain data in, a `Report` out; the HTML is built from it by
`tuanjian.tools.report.render`. How each figure is counted:

- A *conversation* is one conversation session of a sender (Rasa starts a new
  session after 60 idle minutes, `session_started` in the tracker store) that
  has at least one member message in the date range.
- A conversation *has a ticket* when a ticket of the same sender_id (whatever
  the ticket's channel) was created during that session, i.e. between its
  `session_started` and the sender's next one.
- A conversation's *last question* is its last member message to the
  assistant that asks something (not a rating, greeting, thanks, goodbye,
  yes or no). It was *answered* unless it fell to `nlu_fallback` or its answer
  was then rated 👎. *Deflection rate* = conversations whose last question was
  answered and that have no ticket / conversations; conversations whose last
  question fell to the fallback and that have no ticket are *left after a
  fallback* (the member got "您是不是想问…" and went). A conversation of
  greetings only is neither.
- *Member messages* are the `user` events in the range, except the ones sent
  while a ticket was open (answered by `action_handoff_pending`: they are
  addressed to staff, not to the assistant); *fallback rate* = those whose
  intent is `nlu_fallback` / member messages.
- *Answers per FAQ*: `utter_faq_*` action events in the range, keyed by the FAQ
  intent (`utter_faq_x` -> `faq_x`, the key ratings use).
- *Ratings per FAQ*, *handoff reasons*: ratings / tickets created in the range.
- *Unanswered questions*: the texts of the `nlu_fallback` member messages in
  the range (those with words) plus the questions of the tickets created in the
  range (a ticket question that repeats one of the same sender's fallback
  messages is counted once), grouped by similarity (`group_questions`).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from itertools import groupby
from re import Pattern
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tuanjian.backend.models import Rating, Ticket
from tuanjian.backend.review import FALLBACK_ACTIONS, RATING_INTENT, ReviewService
from tuanjian.backend.rules import utcnow
from tuanjian.domain_names import ACTION_HANDOFF_PENDING, NLU_FALLBACK
from tuanjian.tools.report.texts import texts
from tuanjian.tracker_events import EVENTS, SESSION_STARTED, entity_value, event_data, text_of

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_DAYS = 30
# Cosine similarity (TF-IDF, character 1-3-grams) at which a question joins a group.
DEFAULT_THRESHOLD = 0.4
FALLBACK_INTENT = NLU_FALLBACK
FAQ_ACTION_PREFIX = "utter_faq_"
STAFF_ACTION = ACTION_HANDOFF_PENDING
# Member messages that ask nothing: the last question's outcome stands.
NOT_QUESTIONS = frozenset({"greet", "thank", "goodbye", "affirm", "deny", "non_text_message", RATING_INTENT})
ANSWERED, FELL_BACK, RATED_DOWN = "answered", "fell_back", "rated_down"
CHUNK = 500  # sender ids per IN (...) query

# --------------------------------------------------------------------------- period

def timezone_named(name: str) -> tzinfo:
    """A tz database zone (the tzdata package carries the database)."""
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class Period:
    """The days first..last inclusive, midnight to midnight in `tz`."""

    first: date
    last: date
    tz: tzinfo = timezone.utc

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"--to {self.last} is before --from {self.first}")

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.tz)

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        return self.end.timestamp()

    def contains(self, timestamp: float | None) -> bool:
        return timestamp is not None and self.start_ts <= timestamp < self.end_ts

    def day_of(self, timestamp: float) -> date:
        return datetime.fromtimestamp(timestamp, self.tz).date()

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def period_from_args(first: str | None, last: str | None, tz_name: str = DEFAULT_TIMEZONE,
                     today: date | None = None) -> Period:
    """--from/--to as YYYY-MM-DD; missing, the last 30 days up to today."""
    tz = timezone_named(tz_name)
    today = today or datetime.now(tz).date()
    last_day = date.fromisoformat(last) if last else today
    first_day = date.fromisoformat(first) if first else last_day - timedelta(days=DEFAULT_DAYS - 1)
    return Period(first_day, last_day, tz)


# --------------------------------------------------------------------------- results

@dataclass
class Conversation:
    sender_id: str
    started_at: float           # its session_started (or first event)
    messages: int = 0           # member messages in the range, to the assistant
    fallbacks: int = 0          # ... of which nlu_fallback
    to_staff: int = 0           # member messages in the range while a ticket was open
    first_message_at: float | None = None  # first member message in the range
    tickets: list[int] = field(default_factory=list)
    has_messages: bool = False  # any member message, in the range or not
    last_question: str | None = None  # ANSWERED, FELL_BACK or RATED_DOWN
    model_id: str | None = None  # the model that read its first member message in the range

    @property
    def deflected(self) -> bool:
        return not self.tickets and self.last_question == ANSWERED

    @property
    def left_after_fallback(self) -> bool:
        return not self.tickets and self.last_question == FELL_BACK

    @property
    def in_range(self) -> bool:
        return self.first_message_at is not None


@dataclass
class Question:
    text: str
    at: float


@dataclass
class QuestionGroup:
    size: int                       # how many times (messages + tickets)
    representative: str             # its most frequent wording (the earliest on a tie)
    variants: list[tuple[str, int]]  # every distinct wording with its count, most frequent first


@dataclass
class DailyFigures:
    day: date
    conversations: int
    with_ticket: int
    deflected: int


@dataclass
class ModelFigures:
    """The conversations a model served: its first member message was read by it."""

    model_id: str
    first_seen: datetime
    conversations: int
    deflected: int

    @property
    def deflection_rate(self) -> float | None:
        return self.deflected / self.conversations if self.conversations else None


@dataclass
class ReviewFigures:
    awaiting: int                 # wordings in the review inbox now
    labelled: dict[str, int]      # wordings given each intent in the range, most first
    new_topics: int
    dismissed: int


@dataclass
class Report:
    period: Period
    generated_at: datetime
    conversations: int
    conversations_with_ticket: int
    deflected: int                              # last question answered, no ticket
    left_after_fallback: int                    # last question fell to the fallback, no ticket
    member_messages: int
    fallback_messages: int
    messages_to_staff: int
    answers_per_faq: dict[str, int]             # most answered first
    ratings_per_faq: dict[str, dict[str, int]]  # {"faq_x": {"up": n, "down": m}}
    unanswered: list[QuestionGroup]             # largest first
    unanswered_questions: int                   # texts that were grouped
    handoff_reasons: dict[str, int]             # tickets created in the range, by reason
    tickets: int
    daily: list[DailyFigures]
    threshold: float
    models: list[ModelFigures] = field(default_factory=list)  # oldest first: the trend across retrains
    review: ReviewFigures | None = None

    @property
    def deflection_rate(self) -> float | None:
        return self.deflected / self.conversations if self.conversations else None

    @property
    def fallback_rate(self) -> float | None:
        return self.fallback_messages / self.member_messages if self.member_messages else None

    @property
    def ratings_up(self) -> int:
        return sum(r["up"] for r in self.ratings_per_faq.values())

    @property
    def ratings_down(self) -> int:
        return sum(r["down"] for r in self.ratings_per_faq.values())


# --------------------------------------------------------------------------- tracker store

@dataclass
class TrackerFigures:
    conversations: list[Conversation]  # every session of the senders active in the range
    answers: Counter
    questions: list[Question]          # nlu_fallback texts in the range
    fallback_texts: set                # (sender_id, normalised text), to spot repeated tickets
    model_first_seen: dict = field(default_factory=dict)  # model_id -> first member message it read


def _senders_active(connection, period: Period) -> list[str]:
    query = (sa.select(EVENTS.c.sender_id).distinct()
             .where(EVENTS.c.type_name == "user",
                    EVENTS.c.timestamp >= period.start_ts, EVENTS.c.timestamp < period.end_ts)
             .order_by(EVENTS.c.sender_id))
    return [row[0] for row in connection.execute(query)]


def _events_of(connection, senders: Sequence[str]) -> Iterable[sa.engine.Row]:
    # Only user events need their JSON (for the text).
    data = sa.case((EVENTS.c.type_name == "user", EVENTS.c.data), else_=sa.null())
    for n in range(0, len(senders), CHUNK):
        query = (sa.select(EVENTS.c.sender_id, EVENTS.c.type_name, EVENTS.c.timestamp,
                           EVENTS.c.intent_name, EVENTS.c.action_name, data.label("data"))
                 .where(EVENTS.c.sender_id.in_(senders[n:n + CHUNK]))
                 .order_by(EVENTS.c.sender_id, EVENTS.c.id))
        yield from connection.execute(query)


def read_tracker(engine: Engine, period: Period) -> TrackerFigures:
    """Conversations, FAQ answers and fallback texts of the senders active in the range."""
    figures = TrackerFigures([], Counter(), [], set())
    with engine.connect() as connection:
        senders = _senders_active(connection, period)
        for sender, rows in groupby(_events_of(connection, senders), key=lambda row: row.sender_id):
            _read_sender(sender, list(rows), period, figures)
    return figures


def _read_sender(sender: str, rows: list, period: Period, figures: TrackerFigures) -> None:
    # The action that answered each event's next member message.
    next_action: list[str | None] = [None] * len(rows)
    following = None
    for index in range(len(rows) - 1, -1, -1):
        next_action[index] = following
        if rows[index].type_name == "action":
            following = rows[index].action_name
    conversations: list[Conversation] = []
    for index, row in enumerate(rows):
        if not conversations or row.type_name == SESSION_STARTED:
            conversations.append(Conversation(sender, row.timestamp or 0.0))
        current = conversations[-1]
        if row.type_name == "user":
            current.has_messages = True
            if period.contains(row.timestamp):
                _count_message(current, row, next_action[index], figures)
        elif row.type_name == "action":
            name = row.action_name or ""
            if name.startswith(FAQ_ACTION_PREFIX) and period.contains(row.timestamp):
                figures.answers[name[len("utter_"):]] += 1
    # A segment without member messages (the action_session_start before a
    # session_started) is no conversation.
    figures.conversations.extend(c for c in conversations if c.has_messages)


def _count_message(conversation: Conversation, row, reply: str | None, figures: TrackerFigures) -> None:
    """Count a member message; `reply` is the action that answered it."""
    if conversation.first_message_at is None:
        conversation.first_message_at = row.timestamp
    model_id = (event_data(row.data).get("metadata") or {}).get("model_id")
    if isinstance(model_id, str) and model_id:
        conversation.model_id = conversation.model_id or model_id
        first = figures.model_first_seen.get(model_id)
        figures.model_first_seen[model_id] = row.timestamp if first is None else min(first, row.timestamp)
    if reply == STAFF_ACTION:
        conversation.to_staff += 1
        return
    conversation.messages += 1
    if row.intent_name == RATING_INTENT:
        if entity_value(row.data, "rating") == "down" and conversation.last_question == ANSWERED:
            conversation.last_question = RATED_DOWN
    elif row.intent_name not in NOT_QUESTIONS:
        fell_back = row.intent_name == FALLBACK_INTENT or reply in FALLBACK_ACTIONS
        conversation.last_question = FELL_BACK if fell_back else ANSWERED
    if row.intent_name != FALLBACK_INTENT:
        return
    conversation.fallbacks += 1
    text = text_of(row.data)
    key = question_key(text)
    if key:  # an empty or emoji-only message asks nothing
        figures.questions.append(Question(text, row.timestamp))
        figures.fallback_texts.add((conversation.sender_id, key))


# --------------------------------------------------------------------------- backend

def _tickets_created_in(session: Session, period: Period):
    query = (sa.select(Ticket.id, Ticket.sender_id, Ticket.reason, Ticket.question, Ticket.created_at)
             .where(Ticket.created_at >= period.start, Ticket.created_at < period.end)
             .order_by(Ticket.created_at, Ticket.id))
    return session.execute(query).all()


def _tickets_of(session: Session, senders: Sequence[str]):
    for n in range(0, len(senders), CHUNK):
        query = (sa.select(Ticket.id, Ticket.sender_id, Ticket.created_at)
                 .where(Ticket.sender_id.in_(senders[n:n + CHUNK])).order_by(Ticket.id))
        yield from session.execute(query).all()


def _ratings_in(session: Session, period: Period) -> dict[str, dict[str, int]]:
    query = (sa.select(Rating.faq, Rating.value, sa.func.count())
             .where(Rating.at >= period.start, Rating.at < period.end)
             .group_by(Rating.faq, Rating.value))
    ratings: dict[str, dict[str, int]] = defaultdict(lambda: {"up": 0, "down": 0})
    for faq, value, count in session.execute(query):
        ratings[faq][value] += count
    return dict(sorted(ratings.items(), key=lambda kv: (-(kv[1]["up"] + kv[1]["down"]), kv[0])))


def assign_tickets(conversations: list[Conversation], tickets: Iterable[tuple[int, str, float]]) -> None:
    """Attach each ticket (id, sender_id, created_at) to the sender's session it was
    opened in: the last one started at or before it (the first, if clocks disagree)."""
    sessions_of: dict[str, list[Conversation]] = defaultdict(list)
    for conversation in sorted(conversations, key=lambda c: c.started_at):
        sessions_of[conversation.sender_id].append(conversation)
    for ticket_id, sender_id, created_at in tickets:
        candidates = sessions_of.get(sender_id)
        if not candidates:
            continue
        owner = candidates[0]
        for conversation in candidates:
            if conversation.started_at <= created_at:
                owner = conversation
        owner.tickets.append(ticket_id)


# --------------------------------------------------------------------------- grouping

_WORD = re.compile(r"\w")


@cache
def fillers() -> Pattern[str]:
    """Question words and particles ("fillers" in texts.yml): "我的团费怎么交" and
    "团费在哪里交" differ only in these, so they are dropped before comparing
    (longest first)."""
    words = sorted(texts()["fillers"], key=len, reverse=True)
    return re.compile("|".join(map(re.escape, words)))


def question_key(text: str) -> str:
    """The normalised text the assistant's NLU sees ('' if it has no words)."""
    from tuanjian.text import normalize

    return normalize(text)


def _core(key: str) -> str:
    core = fillers().sub("", key).strip()
    return core if _WORD.search(core) else key


def group_questions(questions: Sequence[Question],
                    threshold: float = DEFAULT_THRESHOLD) -> list[QuestionGroup]:
    """Group similar questions: TF-IDF over character 1-3-grams, cosine similarity.

    Texts are normalised as the NLU sees them, question words and particles
    dropped; equal results are one wording. Wordings are taken most frequent
    first (then earliest) and each joins the group whose centroid it is most
    similar to, if that similarity is at least `threshold`, or starts a group.
    """
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    # core wording -> {"count", "first": time, "texts": Counter of original texts, "seen": text -> time}
    wordings: dict[str, dict] = {}
    for question in sorted(questions, key=lambda q: q.at):
        key = question_key(question.text)
        if not key:
            continue
        entry = wordings.setdefault(_core(key), {"count": 0, "first": question.at, "texts": Counter(), "seen": {}})
        entry["count"] += 1
        entry["texts"][question.text] += 1
        entry["seen"].setdefault(question.text, question.at)
    if not wordings:
        return []
    order = sorted(wordings, key=lambda k: (-wordings[k]["count"], wordings[k]["first"]))
    # Rows are L2-normalised, so a group's centroid is the count-weighted sum of
    # its rows, and its similarity to a row follows from the rows' dot products.
    vectors = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True).fit_transform(order)
    weights = np.array([wordings[core]["count"] for core in order], dtype=float)
    labels = np.zeros(len(order), dtype=int)
    squared_norms: list[float] = []  # |centroid|^2 of each group
    members: list[list[str]] = []
    for index, core in enumerate(order):
        weight = weights[index]
        best, score = -1, 0.0
        if members:
            dots = vectors[:index] @ vectors[index].toarray().ravel()
            to_groups = np.bincount(labels[:index], weights=weights[:index] * dots, minlength=len(members))
            scores = to_groups / np.sqrt(squared_norms)
            best = int(np.argmax(scores))
            score = float(scores[best])
        if best >= 0 and score >= threshold:
            squared_norms[best] += 2 * weight * to_groups[best] + weight * weight
            members[best].append(core)
        else:
            best = len(members)
            squared_norms.append(weight * weight)
            members.append([core])
        labels[index] = best
    groups = []
    for cores in members:
        texts: Counter = Counter()
        seen: dict[str, float] = {}
        for core in cores:
            texts.update(wordings[core]["texts"])
            for text, first in wordings[core]["seen"].items():
                seen[text] = min(first, seen.get(text, first))
        variants = sorted(texts.items(), key=lambda kv: (-kv[1], seen[kv[0]]))
        size = sum(texts.values())
        groups.append((size, min(seen.values()), QuestionGroup(size, variants[0][0], variants)))
    groups.sort(key=lambda g: (-g[0], g[1]))
    return [g[2] for g in groups]


# --------------------------------------------------------------------------- the report

def build_report(tracker_engine: Engine, sessions: Callable[[], Session], period: Period,
                 threshold: float = DEFAULT_THRESHOLD, now: datetime | None = None) -> Report:
    """Every figure of the report for `period`."""
    reviews = ReviewService(sessions, (lambda: now) if now else utcnow)
    reviews.collect(tracker_engine)  # the inbox as the staff page shows it now
    tracker = read_tracker(tracker_engine, period)
    senders = sorted({c.sender_id for c in tracker.conversations})
    with sessions() as session, session.begin():
        created = _tickets_created_in(session, period)
        owned = list(_tickets_of(session, senders))
        ratings = _ratings_in(session, period)
    review = reviews.figures(period.start, period.end)
    assign_tickets(tracker.conversations, ((t.id, t.sender_id, t.created_at.timestamp()) for t in owned))

    conversations = [c for c in tracker.conversations if c.in_range]
    questions = list(tracker.questions)
    for ticket in created:
        key = question_key(ticket.question or "")
        if key and (ticket.sender_id, key) not in tracker.fallback_texts:
            questions.append(Question(ticket.question.strip(), ticket.created_at.timestamp()))

    reasons = Counter(t.reason for t in created)
    daily_conversations: Counter = Counter()
    daily_tickets: Counter = Counter()
    daily_deflected: Counter = Counter()
    for conversation in conversations:
        if conversation.first_message_at is None:  # in_range says it is not
            continue
        day = period.day_of(conversation.first_message_at)
        daily_conversations[day] += 1
        daily_tickets[day] += bool(conversation.tickets)
        daily_deflected[day] += conversation.deflected

    return Report(
        period=period,
        generated_at=now or datetime.now(period.tz),
        conversations=len(conversations),
        conversations_with_ticket=sum(1 for c in conversations if c.tickets),
        deflected=sum(c.deflected for c in conversations),
        left_after_fallback=sum(c.left_after_fallback for c in conversations),
        member_messages=sum(c.messages for c in conversations),
        fallback_messages=sum(c.fallbacks for c in conversations),
        messages_to_staff=sum(c.to_staff for c in conversations),
        answers_per_faq=dict(sorted(tracker.answers.items(), key=lambda kv: (-kv[1], kv[0]))),
        ratings_per_faq=ratings,
        unanswered=group_questions(questions, threshold),
        unanswered_questions=len(questions),
        handoff_reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        tickets=len(created),
        daily=[DailyFigures(day, daily_conversations[day], daily_tickets[day], daily_deflected[day])
               for day in period.days()],
        threshold=threshold,
        models=_model_figures(conversations, tracker.model_first_seen, period.tz),
        review=ReviewFigures(**review),
    )


def _model_figures(conversations: Iterable[Conversation], first_seen: dict[str, float],
                   tz: tzinfo) -> list[ModelFigures]:
    served: dict[str, list[Conversation]] = defaultdict(list)
    for conversation in conversations:
        if conversation.model_id:
            served[conversation.model_id].append(conversation)
    return sorted((ModelFigures(model, datetime.fromtimestamp(first_seen[model], tz), len(served[model]),
                                sum(c.deflected for c in served[model])) for model in served),
                  key=lambda m: m.first_seen)
