"""Every domain name that Python refers to exists in the domain.

The names module is checked whole; beyond it, every string literal that the
actions and the plugins pass where Rasa expects a slot, an action, a form or a
response (SlotSet, get_slot, FollowupAction, ActiveLoop, utter_message's
response, an action's name()) or compares with an intent is looked up, so a rename in domain/ that leaves
Python behind fails here instead of in a conversation.
"""
import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa_sdk.executor import ActionExecutor

from tuanjian import domain_names, settings

CODE = [p for folder in ("actions", "tuanjian") for p in sorted((settings.ROOT / folder).rglob("*.py"))
        if "migrations" not in p.parts]
SLOT_CALLS = {"SlotSet", "get_slot"}
ACTION_CALLS = {"FollowupAction", "ActionExecuted"}
LOOP_CALLS = {"ActiveLoop"}


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(settings.DOMAIN_DIR))


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def literal_references(path: Path) -> Iterator[tuple[str, str, int]]:
    """(kind, name, line) of each string literal used as a domain name in the file."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call):
            first = node.args[0] if node.args else None
            literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
            called = _called(node)
            if literal and called in SLOT_CALLS:
                yield "slot", literal, node.lineno
            elif literal and called in ACTION_CALLS:
                yield "action", literal, node.lineno
            elif literal and called in LOOP_CALLS:
                yield "form", literal, node.lineno
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "response" and isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield "response", value.value, node.lineno
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and "intent" in node.left.id:
            # intent == "faq_wrong_info", intent in ("greet", ...)
            for compared in node.comparators:
                items = compared.elts if isinstance(compared, (ast.Tuple, ast.List, ast.Set)) else [compared]
                for item in items:
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        yield "intent", item.value, node.lineno
        elif isinstance(node, ast.FunctionDef) and node.name == "name" and "actions" in path.parts:
            # An action's name (channels and components have a name() too).
            for returned in ast.walk(node):
                if (isinstance(returned, ast.Return) and isinstance(returned.value, ast.Constant)
                        and isinstance(returned.value.value, str)):
                    yield "action", returned.value.value, returned.lineno


def known(domain: Domain, kind: str, name: str) -> bool:
    if kind == "intent":
        return name in domain.intents or name == domain_names.NLU_FALLBACK
    if kind == "slot":
        return name in {slot.name for slot in domain.slots}
    if kind == "response":
        return name in domain.responses
    if kind == "form":
        return name in domain.form_names
    return name in domain.action_names_or_texts or name in domain.form_names


def test_the_scan_sees_the_actions():
    # Guards the test itself: it must find the names it is meant to check.
    found = {(kind, name) for path in CODE for kind, name, _ in literal_references(path)}
    assert ("action", "action_transfer_status") in found
    assert ("response", "utter_handoff_unavailable") in found
    assert ("intent", "faq_wrong_info") in found
    assert any(kind == "slot" for kind, _ in found)


def test_every_literal_domain_name_in_python_is_in_the_domain(domain):
    missing = [f"{path.relative_to(settings.ROOT)}:{line}: {kind} {name}"
               for path in CODE for kind, name, line in literal_references(path)
               if not known(domain, kind, name)]
    assert missing == []


def test_the_names_module_matches_the_domain(domain):
    intents = set(domain.intents) | {domain_names.NLU_FALLBACK}
    slots = {slot.name for slot in domain.slots}
    for name in (*domain_names.QUESTION_INTENTS, *domain_names.REVIEW_LABELS):
        assert name in intents, name
    for name in (domain_names.HANDOFF_TICKET, *domain_names.GUIDE_SLOTS):
        assert name in slots, name
    assert domain_names.MEMBER_NUMBER_ENTITY in domain.entities
    assert domain_names.ACTION_HANDOFF_PENDING in domain.action_names_or_texts
    assert {domain_names.VERIFICATION_FORM, domain_names.DESTINATION_FORM} <= set(domain.form_names)


def test_guide_slots_cover_the_destination_form(domain):
    required = domain.forms[domain_names.DESTINATION_FORM]["required_slots"]
    assert set(required) <= set(domain_names.GUIDE_SLOTS)


def test_every_registered_action_is_in_the_domain(domain):
    executor = ActionExecutor()
    executor.register_package("actions")
    assert sorted(set(executor.actions) - set(domain.action_names_or_texts)) == []
