"""Check the action server's replies against Rasa's schema, compiled once.

Rasa's `RemoteAction` checks every reply with `jsonschema.validate`, which
first checks the schema itself against JSON Schema's metaschema: about 23 ms
of a replica's CPU per custom action call, two calls in a form's turn, close
to half of all a replica did under the load test (py-spy, docs/experiments.md).
A validator compiled once accepts a valid reply in about 1 ms. An invalid
reply still goes to Rasa's own check, so it fails as it always did, with
Rasa's error and message.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction

# Rasa's own check, kept once: a second import after installing must not take
# the installed check for Rasa's.
_rasa_check = getattr(RemoteAction, "_rasa_validate_action_result", RemoteAction._validate_action_result)
RemoteAction._rasa_validate_action_result = _rasa_check


@lru_cache(maxsize=1)
def response_validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)  # the draft jsonschema.validate would pick
    cls.check_schema(schema)
    return cls(schema)


def _check_with_compiled_schema(self: RemoteAction, result: dict[str, Any]) -> bool:
    if response_validator().is_valid(result):
        return True
    return _rasa_check(self, result)  # raises Rasa's ValidationError


def check_replies_with_compiled_schema() -> None:
    """Install the check (idempotent): a channel calls it when the server starts,
    which also compiles the schema, so no member's turn waits for that."""
    response_validator()
    RemoteAction._validate_action_result = _check_with_compiled_schema
