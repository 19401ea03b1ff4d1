"""Rasa's SQL tracker store, writing verification turns with the typed digits masked.

Used in endpoints.yml (`type: tuanjian.rasa_server.tracker_store.RedactingSQLTrackerStore`,
with the SQL store's own settings, the embedded SQLite file). When
TUANJIAN_TRACKER_STORE_URL is set (the production profile), that URL replaces
them: the same endpoints.yml serves both. The live turn still holds the digits
(the action server needs them); what is written, and so what any later turn,
the help-desk report or a database reader sees, does not.

Rasa's store reads and deserialises the whole session on every turn, and
replays it into a tracker, so a turn late in a long conversation cost several
times an early one (p50 179 ms at turn 150-200 against 49 ms in the first ten,
profiled: half of it that read). This one keeps the conversations it served
lately, as trackers, and reads only the rows added since, applying them to the
kept tracker; what it hands out is a copy (`KeptTracker`, which copies without
a replay). That is exact because every writer of a conversation (its turns,
the help desk closing a ticket, a retried message) holds the conversation's
lock, so a conversation's rows are committed in the order of their ids; rows
are only ever added, never changed. A count of the session's rows (Rasa's own
query) guards that: when it differs from what was kept plus what was read,
the session is read whole. Saving a turn of a kept conversation does not count
the rows again (Rasa's save does): the turn's read, under the same lock, has
just counted them; the events written are applied to the kept tracker as
well, so the next turn of this process reads none back.
"""
import json
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActiveLoop, Event, Restarted, SessionStarted, deserialise_events
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import Engine, make_url

from tuanjian import settings
from tuanjian.rasa_server.tracker import KeptTracker
from tuanjian.redaction import redact_events

# Conversations a process keeps (each a few hundred kB at most).
RECENT_CONVERSATIONS = 512
# Events written by one INSERT (a first save of a long conversation is split).
INSERT_AT_ONCE = 100


def newest_context(events: Sequence[Event]) -> Event | None:
    """The newest event that tells whether a loop is active (context for the redaction)."""
    return next((e for e in reversed(events) if isinstance(e, (ActiveLoop, Restarted, SessionStarted))), None)


@dataclass
class _Read:
    last_id: int
    tracker: KeptTracker  # the conversation as stored; never handed out, only copies of it
    context: Event | None

    def add(self, events: list[Event], last_id: int) -> None:
        for event in events:
            self.tracker.update(event)
        self.last_id = last_id
        self.context = newest_context(events) or self.context
        self.tracker.applied_events()  # folded once here, the copies go on from it


class RedactingSQLTrackerStore(SQLTrackerStore):
    engine: Engine

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        url = settings.tracker_store_url()
        if url:
            parsed = make_url(url)
            kwargs.update(dialect=parsed.drivername, host=parsed.host, port=parsed.port,
                          db=parsed.database, username=parsed.username, password=parsed.password,
                          query=dict(parsed.query) or None)
        super().__init__(*args, **kwargs)
        # Rasa's engine hands out pooled connections unchecked: after the
        # database restarts, the first turn on each stale one would fail.
        stale = self.engine
        # hide_parameters: a failed insert is logged without the member's message.
        self.engine = create_engine(stale.url, pool_pre_ping=True, hide_parameters=True,
                                    **create_engine_kwargs(stale.url))
        self.sessionmaker.configure(bind=self.engine)
        stale.dispose()
        self._recent: OrderedDict[str, _Read] = OrderedDict()

    @property
    def domain(self) -> Domain:
        return self._domain

    @domain.setter
    def domain(self, domain: Domain | None) -> None:
        # A new model may bring other slots: what was kept was made with the old ones.
        self._domain = domain or Domain.empty()
        self._recent = OrderedDict()

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            known = self._recent.pop(sender_id, None)
            rows = None
            if known is not None:
                rows = (session.query(self.SQLEvent)
                        .filter(self.SQLEvent.sender_id == sender_id, self.SQLEvent.id > known.last_id)
                        .order_by(self.SQLEvent.id).all())
                # A new session, or the session holds other rows than the kept
                # ones and the new ones (deleted rows, a row committed late, a
                # session boundary Rasa places by timestamp): read it whole.
                if any(row.type_name == SessionStarted.type_name for row in rows) or \
                        self._event_query(session, sender_id, False).count() != len(known.tracker.events) + len(rows):
                    known, rows = None, None
            if rows is None:
                rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
            events = deserialise_events([json.loads(r.data) for r in rows])
            last_id = rows[-1].id if rows else (known.last_id if known else 0)
        if known is None:
            if not events or not self.domain:
                return None
            known = _Read(last_id, KeptTracker(sender_id, self.domain.slots), None)
        known.add(events, last_id)
        self._recent[sender_id] = known
        while len(self._recent) > RECENT_CONVERSATIONS:
            self._recent.popitem(last=False)
        return known.tracker.copy()

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Rasa's save, told how many rows the session holds when this process
        read them this turn (under the conversation's lock: no one else wrote
        since), instead of counting them again; what it writes is kept too."""
        await self.stream_events(tracker)
        known = self._recent.get(tracker.sender_id)
        with self.session_scope() as session:
            new = list(self._additional_events(session, tracker, known))
            last_id = self._insert(session, [self._row(tracker.sender_id, event) for event in new])
            session.commit()
        if known is not None and last_id is not None:
            if any(isinstance(event, SessionStarted) for event in new):
                self._recent.pop(tracker.sender_id, None)  # a new session: read it whole next time
            else:
                known.add(new, last_id)

    def _row(self, sender_id: str, event: Event) -> dict[str, Any]:
        data = event.as_dict()
        return {"sender_id": sender_id, "type_name": event.type_name, "timestamp": data.get("timestamp"),
                "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
                "action_name": data.get("name"), "data": json.dumps(data)}

    def _insert(self, session: Any, rows: list[dict[str, Any]]) -> int | None:
        """The rows in one statement per INSERT_AT_ONCE, in order; the id of the
        last. (Rasa's ORM save sends one INSERT a row to learn each id: about
        eight round trips a turn, a large part of the database's work.)"""
        table = self.SQLEvent.__table__
        dialect = session.get_bind().dialect.name
        last_id = None
        for start in range(0, len(rows), INSERT_AT_ONCE):
            part = rows[start:start + INSERT_AT_ONCE]
            if dialect == "postgresql":
                last_id = max(session.execute(insert(table).values(part).returning(table.c.id)).scalars())
            elif dialect == "sqlite":  # the rowid of the statement's last row
                last_id = session.execute(insert(table).values(part)).lastrowid
            else:
                objects = [self.SQLEvent(**row) for row in part]
                session.add_all(objects)
                session.flush()
                last_id = objects[-1].id
        return last_id

    def _additional_events(self, session, tracker: DialogueStateTracker,
                           known: _Read | None = None) -> Iterator[Event]:
        events = list(tracker.events)
        if known is None:
            new: list[Event] = list(super()._additional_events(session, tracker))
            before = newest_context(events[:len(events) - len(new)])
        else:
            new = events[len(known.tracker.events):]
            before = known.context
        if not new:
            return iter(())
        # Whether a message was a verification turn depends on the form being
        # active before it: the newest loop event already stored is context.
        context = [before.as_dict()] if before is not None else []
        given = [e.as_dict() for e in new]
        redacted = redact_events(context + given)[len(context):]
        # redact_events returns the same dict for an event it left alone.
        return iter([event if data is original else Event.from_parameters(data)
                     for event, original, data in zip(new, given, redacted, strict=False)])
