"""The pure approval-chain rules (FAQ 4, 17), without a database."""
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from tuanjian.backend.rules import APPROVAL_PERIOD, can_withdraw, chain_state, mask_name, member_actions

NOW = datetime(2024, 6, 15, 8, 30, tzinfo=timezone.utc)


@dataclass
class Step:
    position: int
    organisation_id: int
    received_at: datetime | None = None
    decided_at: datetime | None = None
    decision: str | None = None


def four_steps(first_received: datetime):
    return [Step(1, 11, first_received), Step(2, 12), Step(3, 13), Step(4, 14)]


def test_one_second_before_the_deadline_the_step_is_pending_with_one_day_left():
    chain = chain_state(four_steps(NOW - APPROVAL_PERIOD + timedelta(seconds=1)), NOW)
    assert chain.current_position == 1
    assert chain.steps[0].decision == "pending"
    assert chain.days_left == 1
    assert chain.current is not None
    assert chain.current.deadline == NOW + timedelta(seconds=1)


def test_at_exactly_fifteen_days_the_step_is_approved_by_default_and_the_next_receives():
    chain = chain_state(four_steps(NOW - APPROVAL_PERIOD), NOW)
    assert chain.steps[0].decision == "default_approved"
    assert chain.steps[0].decided_at == NOW
    assert chain.current_position == 2
    assert chain.current is not None
    assert chain.current.received_at == NOW
    assert chain.days_left == 15


def test_two_default_approvals_in_a_row():
    received = NOW - timedelta(days=31)
    chain = chain_state(four_steps(received), NOW)
    assert [s.decision for s in chain.steps] == ["default_approved", "default_approved", "pending", None]
    assert chain.steps[1].received_at == received + APPROVAL_PERIOD
    assert chain.current is not None
    assert chain.current.received_at == received + 2 * APPROVAL_PERIOD
    assert chain.days_left == 14


def test_explicit_approval_starts_the_next_period_at_the_decision():
    steps = four_steps(NOW - timedelta(days=12))
    steps[0].decision, steps[0].decided_at = "approved", NOW - timedelta(days=9)
    steps[1].decision, steps[1].decided_at = "approved", NOW - timedelta(days=4)
    chain = chain_state(steps, NOW)
    assert chain.current_position == 3
    assert chain.current is not None
    assert chain.current.received_at == NOW - timedelta(days=4)
    assert chain.days_left == 11
    assert chain.steps[3].received_at is None


def test_all_steps_approved_by_default_finishes_the_chain():
    received = NOW - 4 * APPROVAL_PERIOD
    chain = chain_state(four_steps(received), NOW)
    assert chain.current is None
    assert chain.finished_at == NOW
    assert chain.days_left is None


def test_nothing_is_approved_by_default_after_the_request_stopped():
    chain = chain_state(four_steps(NOW - timedelta(days=40)), NOW, until=NOW - timedelta(days=30))
    assert [s.decision for s in chain.steps] == ["pending", None, None, None]
    assert chain.current is None and chain.finished_at is None


def test_withdrawal_depends_on_the_receiving_side_only():
    steps = four_steps(NOW - timedelta(days=20))  # step 1 default-approved: sending side
    assert can_withdraw("member", "pending", chain_state(steps, NOW))
    steps = four_steps(NOW - timedelta(days=31))  # step 3 pending
    assert can_withdraw("member", "pending", chain_state(steps, NOW))
    steps = four_steps(NOW - timedelta(days=46))  # step 3 default-approved
    assert not can_withdraw("member", "pending", chain_state(steps, NOW))
    assert not can_withdraw("member", "awaiting_assignment", chain_state(steps, NOW))


@pytest.mark.parametrize("status, withdrawable, actions", [
    (None, False, ("start_request",)),
    ("pending", True, ("wait", "contact", "withdraw")),
    ("pending", False, ("wait", "contact")),
    ("awaiting_assignment", False, ("wait", "contact")),
    ("completed", False, ("report_to_new_branch",)),
    ("terminated", False, ("start_new", "contact")),
    ("withdrawn", False, ("start_new",)),
])
def test_member_actions(status, withdrawable, actions):
    assert member_actions(status, withdrawable) == actions


@pytest.mark.parametrize("name, masked", [("张明", "张*"), ("欧阳娜娜", "欧***"), ("李", "李"), ("", "")])
def test_mask_name(name, masked):
    assert mask_name(name) == masked
