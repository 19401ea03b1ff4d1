"""The response generator leaves button payloads alone and fills the rest as Rasa does."""
import asyncio

import pytest
from rasa.core.nlg import interpolator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from tuanjian import settings
from tuanjian.rasa_server.nlg import ResponseGenerator


@pytest.fixture(scope="module")
def domain():
    return Domain.load(str(settings.DOMAIN_DIR))


def generate(domain, response, **kwargs):
    tracker = DialogueStateTracker.from_events("web:x", [], slots=domain.slots)
    return asyncio.run(ResponseGenerator(domain=domain).generate(response, tracker, "rest", **kwargs))


def test_faq_buttons_keep_their_payloads_without_an_interpolation_error(domain, monkeypatch):
    errors = []
    monkeypatch.setattr(interpolator.structlogger, "exception", lambda *a, **k: errors.append(k))
    answer = generate(domain, "utter_faq_forgot_password")
    payloads = [b["payload"] for b in answer["buttons"]]
    assert '/rate_answer{"rating":"up"}' in payloads and '/rate_answer{"rating":"down"}' in payloads
    assert errors == []  # Rasa's own generator logs two here, one per rating button


def test_placeholders_are_still_filled(domain):
    reply = generate(domain, "utter_handoff_opened", ticket=42)
    assert "42" in reply["text"] and "{ticket}" not in reply["text"]
