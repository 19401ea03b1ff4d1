"""Rasa's SQL tracker store read directly: its `events` table and the parts of a
stored event that the report and the review inbox need.

The table is defined as rasa.core.tracker_store.SQLTrackerStore.SQLEvent
defines it, and read with SQLAlchemy Core, so no Rasa import is needed.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

EVENTS = sa.Table(
    "events", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)
USER, BOT, ACTION, SLOT, SESSION_STARTED = "user", "bot", "action", "slot", "session_started"


def tracker_engine(url: str) -> sa.engine.Engine:
    """An engine that reads the tracker store (the report, the review inbox);
    a failed statement is logged without the members' text it carried."""
    return sa.create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)


def event_data(data: str | None) -> dict[str, Any]:
    """A stored event's JSON ({} when it is missing or unreadable)."""
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def text_of(data: str | None) -> str:
    """The text of a stored user or bot event, stripped."""
    return str(event_data(data).get("text") or "").strip()


def entity_value(data: str | None, entity: str) -> Any:
    """The first value of `entity` in a stored user event's parse data, or None."""
    entities = (event_data(data).get("parse_data") or {}).get("entities") or []
    return next((e.get("value") for e in entities if isinstance(e, dict) and e.get("entity") == entity), None)
