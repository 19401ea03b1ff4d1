"""The seed FAQ's transfer rules as pure functions (no database, no clock)."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

LEVELS = ("团委", "团工委", "团总支", "团支部")
BRANCH = "团支部"
GENERAL_BRANCH = "团总支"

KINDS = ("member", "admin", "batch")
STATUSES = ("pending", "awaiting_assignment", "completed", "withdrawn", "terminated")
OPEN_STATUSES = ("pending", "awaiting_assignment")
DECISIONS = ("approved", "rejected", "default_approved")
APPROVED = ("approved", "default_approved")

APPROVAL_PERIOD = timedelta(days=15)  # FAQ 17
BATCH_LIMIT = 30  # FAQ 11
# FAQ 5: organisations there are found by typing their name, and members
# report (报到) through that province's WeChat account.
SPECIAL_PROVINCES = ("北京", "广东", "福建")
DAY = timedelta(days=1)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DomainError(Exception):
    """A refused operation; `code` is what the bot renders, the message is for logs."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class StepLike(Protocol):
    position: int
    organisation_id: int
    received_at: datetime | None
    decided_at: datetime | None
    decision: str | None


@dataclass(frozen=True)
class StepState:
    position: int
    organisation_id: int
    received_at: datetime | None  # None: the request has not reached this step
    deadline: datetime | None
    decision: str | None  # approved / default_approved / rejected / pending / None
    decided_at: datetime | None


@dataclass(frozen=True)
class ChainState:
    steps: tuple[StepState, ...]
    current: StepState | None  # the step that has to act now
    days_left: int | None
    finished_at: datetime | None  # when the last step (effectively) approved

    @property
    def current_position(self) -> int | None:
        return self.current.position if self.current else None


def days_left(deadline: datetime, now: datetime) -> int:
    return math.ceil((deadline - now) / DAY)


def chain_state(steps: Iterable[StepLike], now: datetime, until: datetime | None = None) -> ChainState:
    """The effective approval chain at `now` (FAQ 4 order, FAQ 17 default approval).

    A step has APPROVAL_PERIOD from the moment it receives the request; undecided
    at the deadline, it counts as approved by default at exactly the deadline,
    and the next step receives the request at that moment. `until` is when a
    withdrawn or terminated request stopped: nothing happens after it.
    """
    cutoff = now if until is None else min(now, until)
    states = []
    current = None
    previous_decided: datetime | None = None
    reached = True
    for step in sorted(steps, key=lambda s: s.position):
        received = step.received_at if step.received_at is not None else previous_decided
        if not reached or received is None:
            states.append(StepState(step.position, step.organisation_id, None, None, None, None))
            reached = False
            continue
        deadline = received + APPROVAL_PERIOD
        if step.decision is not None:
            decision, decided_at = step.decision, step.decided_at
        elif cutoff >= deadline:
            decision, decided_at = "default_approved", deadline
        else:
            decision, decided_at = "pending", None
        state = StepState(step.position, step.organisation_id, received, deadline, decision, decided_at)
        states.append(state)
        if decision == "pending" and until is None:
            current = state
        reached = decision in APPROVED
        previous_decided = decided_at
    finished = bool(states) and all(s.decision in APPROVED for s in states)
    return ChainState(
        steps=tuple(states),
        current=current,
        days_left=days_left(current.deadline, now) if current and current.deadline else None,
        finished_at=previous_decided if finished else None,
    )


def status_when_finished(to_level: str) -> str:
    """FAQ 10/11: a 团委/团工委/团总支 still has to assign a 团支部."""
    return "completed" if to_level == BRANCH else "awaiting_assignment"


def is_receiving_step(kind: str, position: int) -> bool:
    # member requests: 1 sending branch, 2 its superior, 3 receiving org, 4 its superior
    return position >= 3 if kind == "member" else True


def can_withdraw(kind: str, status: str, chain: ChainState) -> bool:
    """FAQ 3: until the receiving side has approved."""
    if status != "pending":
        return False
    return not any(s.decision in APPROVED and is_receiving_step(kind, s.position) for s in chain.steps)


def member_actions(status: str | None, withdrawable: bool) -> tuple[str, ...]:
    """What the member can do now, as codes the bot renders."""
    if status is None:
        return ("start_request",)
    if status == "pending":
        return ("wait", "contact", "withdraw") if withdrawable else ("wait", "contact")
    if status == "awaiting_assignment":
        return ("wait", "contact")
    if status == "completed":
        return ("report_to_new_branch",)
    if status == "terminated":  # FAQ 2
        return ("start_new", "contact")
    return ("start_new",)


def mask_name(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1)
