"""Rasa's SQL tracker store, writing verification turns with the typed digits masked.

Used in endpoints.yml (`type: tuanjian.rasa_server.tracker_store.RedactingSQLTrackerStore`,
with the SQL store's own settings, the embedded SQLite file). When
TUANJIAN_TRACKER_STORE_URL is set (the production profile), that URL replaces
them: the same endpoints.yml serves both. The live turn still holds the digits
(the action server needs them); what is written, and so what any later turn,
the help-desk report or a database reader sees, does not.
"""
from collections.abc import Iterator
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActiveLoop, Event, Restarted, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import make_url

from tuanjian import settings
from tuanjian.redaction import redact_events


class RedactingSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        url = settings.tracker_store_url()
        if url:
            parsed = make_url(url)
            kwargs.update(dialect=parsed.drivername, host=parsed.host, port=parsed.port,
                          db=parsed.database, username=parsed.username, password=parsed.password,
                          query=dict(parsed.query) or None)
        super().__init__(*args, **kwargs)

    def _additional_events(self, session, tracker: DialogueStateTracker) -> Iterator[Event]:
        new: list[Event] = list(super()._additional_events(session, tracker))
        if not new:
            return iter(())
        # Whether a message was a verification turn depends on the form being
        # active before it: the newest loop event already stored is context.
        context = []
        for event in reversed(list(tracker.events)[:len(tracker.events) - len(new)]):
            if isinstance(event, (ActiveLoop, Restarted, SessionStarted)):
                context = [event.as_dict()]
                break
        given = [e.as_dict() for e in new]
        redacted = redact_events(context + given)[len(context):]
        # redact_events returns the same dict for an event it left alone.
        return iter([event if data is original else Event.from_parameters(data)
                     for event, original, data in zip(new, given, redacted, strict=False)])
