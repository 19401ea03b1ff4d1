"""The action server's replies are checked with Rasa's schema compiled once:
the same verdicts and errors as Rasa's own check, installed when a channel's
server starts."""
import uuid

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import register
from rasa.shared.core.domain import Domain
from rasa_sdk.events import ActiveLoop, FollowupAction, Restarted, SlotSet, UserUtteranceReverted
from sanic import Sanic

from tuanjian.rasa_server import remote_actions
from tuanjian.rasa_server.channels.rest import RestInput

VALID = [
    {},
    {"events": [SlotSet("requested_slot", None), ActiveLoop(None), FollowupAction("action_listen")],
     "responses": [{"response": "utter_verify_ok", "buttons": [], "custom": {}}]},
    {"events": [SlotSet("guide_answers", [1, {"employed": True}]), UserUtteranceReverted(), Restarted()]},
]
INVALID = [
    {"events": "x"},
    {"events": [{"event": "slot", "value": 1}]},  # no slot name
    {"events": [{"event": "slot", "name": 3}]},
    {"events": [{"event": "nope"}]},
    {"events": [{"event": "user", "text": "x", "parse_data": "bad"}]},
    {"responses": [1]},
]


@pytest.fixture
def action():
    return RemoteAction("action_check_status", None)


@pytest.mark.parametrize("reply", VALID)
def test_a_valid_reply_passes_both_checks(action, reply):
    assert remote_actions.response_validator().is_valid(reply)  # the fast path, not the fallback
    assert remote_actions._rasa_check(action, reply) is True
    assert remote_actions._check_with_compiled_schema(action, reply) is True


@pytest.mark.parametrize("reply", INVALID)
def test_an_invalid_reply_fails_with_rasas_error(action, reply):
    assert not remote_actions.response_validator().is_valid(reply)
    with pytest.raises(jsonschema.ValidationError) as rasas:
        remote_actions._rasa_check(action, reply)
    with pytest.raises(jsonschema.ValidationError) as ours:
        remote_actions._check_with_compiled_schema(action, reply)
    assert ours.value.message == rasas.value.message
    assert "Failed to validate Action server response" in ours.value.message


def test_the_schema_itself_is_checked_once_not_per_reply(action, monkeypatch):
    # jsonschema.validate checks the schema against the metaschema on every
    # call: about 23 ms of a replica's CPU per custom action.
    cls = jsonschema.validators.validator_for(RemoteAction.action_response_format_spec())
    checks = []
    original = cls.check_schema

    def counted(_cls, schema, *args, **kwargs):
        checks.append(schema)
        return original(schema, *args, **kwargs)

    monkeypatch.setattr(cls, "check_schema", classmethod(counted))
    remote_actions.response_validator.cache_clear()
    for _ in range(5):
        remote_actions._check_with_compiled_schema(action, VALID[1])
    assert len(checks) == 1
    remote_actions._rasa_check(action, VALID[1])
    assert len(checks) == 2  # Rasa's own check does it every time


async def test_a_channel_installs_the_check_when_its_server_starts(run_app, root, monkeypatch):
    monkeypatch.setattr(RemoteAction, "_validate_action_result", remote_actions._rasa_check)
    app = Sanic(f"remote_actions_{uuid.uuid4().hex[:8]}")
    register([RestInput(domain=Domain.load(str(root / "domain")))], app, route="/webhooks/")
    assert RemoteAction._validate_action_result is remote_actions._rasa_check
    await run_app(app)
    assert RemoteAction._validate_action_result is remote_actions._check_with_compiled_schema


def test_importing_the_module_again_keeps_rasas_own_check(action, monkeypatch):
    import importlib

    monkeypatch.setattr(RemoteAction, "_validate_action_result", remote_actions._check_with_compiled_schema)
    again = importlib.reload(remote_actions)
    with pytest.raises(jsonschema.ValidationError):  # not a RecursionError
        again._check_with_compiled_schema(action, INVALID[0])
