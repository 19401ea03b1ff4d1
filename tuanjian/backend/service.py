"""Transfer operations, one transaction each, on top of the rules.

Default approvals (FAQ 17) are derived from timestamps against the clock; when
a request is next touched, `_settle` writes down what has happened by default
(step times, 'default_approved' decisions, completion) with the derived times,
so the stored rows and the event log catch up without a scheduler.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from tuanjian.backend import rules
from tuanjian.backend.db import TransactionalService
from tuanjian.backend.models import (
    ApprovalStep,
    Member,
    Organisation,
    TransferEvent,
    TransferRequest,
)
from tuanjian.backend.rules import DomainError


@dataclass(frozen=True)
class StepView:
    position: int
    organisation: str
    contact: str
    received_at: datetime | None
    deadline: datetime | None
    decision: str | None  # approved / default_approved / rejected / pending / None (not reached)
    decided_at: datetime | None


@dataclass(frozen=True)
class RequestView:
    id: int
    kind: str
    status: str
    from_organisation: str
    to_organisation: str
    to_level: str
    to_province: str
    created_at: datetime
    closed_at: datetime | None
    termination_reason: str | None


@dataclass(frozen=True)
class MemberStatus:
    member_no: str
    masked_name: str
    organisation: str  # the member's organisation now
    organisation_contact: str
    request: RequestView | None  # the latest one
    steps: tuple[StepView, ...]
    current_position: int | None  # the step that has to act now
    received_at: datetime | None
    deadline: datetime | None
    days_left: int | None
    contact_organisation: str | None  # whom the member should contact now
    contact: str | None
    next_organisation: str | None  # the step after the current one
    actions: tuple[str, ...]

    def current_step(self) -> StepView:
        """The step that has to act now; only a pending request has one."""
        if self.current_position is None:
            raise ValueError("no step acts now: the request is not pending")
        return self.steps[self.current_position - 1]


class TransferService(TransactionalService):
    # -- member-initiated requests (FAQ 3, 4, 17) --------------------------

    def start_request(self, member_no: str, to_org_name: str) -> int:
        now = self.clock()
        with self._transaction() as s:
            member = _member(s, member_no, lock=True)
            to_org = _organisation(s, to_org_name)
            self._refuse_open_request(s, member, now)
            branch = member.organisation
            if to_org.id == branch.id:
                raise DomainError("same_organisation", "member is already in the receiving organisation")
            chain = [branch, branch.parent, to_org, to_org.parent]
            if None in chain:
                raise DomainError("no_superior", "sending or receiving organisation has no superior")
            return cast("int", self._new_request(s, member, "member", to_org, chain, now).id)

    def approve(self, request_id: int, position: int) -> str:
        now = self.clock()
        with self._transaction() as s:
            req = _request(s, request_id)
            chain = self._settle(s, req, now)
            if req.status != "pending":
                raise DomainError("not_pending", f"request {request_id} is {req.status}")
            if chain.current_position != position:
                raise DomainError("not_current_step", f"step {position} is not the current step")
            step = req.steps[position - 1]
            step.decision, step.decided_at = "approved", now
            _event(s, req, "approved", now, {"position": position})
            if position < len(req.steps):
                req.steps[position].received_at = now
            else:
                self._finish(s, req, now)
            return cast("str", req.status)

    def assign_branch(self, request_id: int, branch_name: str) -> None:
        """FAQ 10/11: the receiving 团委/团工委/团总支 assigns one of its 团支部."""
        now = self.clock()
        with self._transaction() as s:
            req = _request(s, request_id)
            self._settle(s, req, now)
            if req.status != "awaiting_assignment":
                raise DomainError("not_awaiting_assignment", f"request {request_id} is {req.status}")
            branch = _organisation(s, branch_name)
            if branch.level != rules.BRANCH or not _is_under(branch, req.to_org):
                raise DomainError("not_subordinate_branch", "not a branch under the receiving organisation")
            req.status, req.closed_at = "completed", now
            req.member.organisation = branch
            _event(s, req, "completed", now, {"organisation_id": branch.id})

    def withdraw(self, request_id: int) -> None:
        now = self.clock()
        with self._transaction() as s:
            req = _request(s, request_id)
            chain = self._settle(s, req, now)
            if not rules.can_withdraw(req.kind, req.status, chain):
                raise DomainError("not_withdrawable", f"request {request_id} can no longer be withdrawn")
            req.status, req.closed_at = "withdrawn", now
            _event(s, req, "withdrawn", now)

    def terminate(self, request_id: int, reason: str) -> None:
        """FAQ 2: the system ends a request; the member may start a new one."""
        now = self.clock()
        with self._transaction() as s:
            req = _request(s, request_id)
            self._settle(s, req, now)
            if req.status not in rules.OPEN_STATUSES:
                raise DomainError("not_open", f"request {request_id} is {req.status}")
            req.status, req.closed_at, req.termination_reason = "terminated", now, reason
            _event(s, req, "terminated", now, {"reason": reason})

    # -- done by organisations (FAQ 10, 11) --------------------------------

    def admin_transfer_out(self, admin_org_name: str, member_no: str, to_org_name: str) -> int:
        """办理转出: only the receiving organisation approves."""
        now = self.clock()
        with self._transaction() as s:
            admin = _organisation(s, admin_org_name)
            member = _member(s, member_no, lock=True)
            to_org = _organisation(s, to_org_name)
            self._refuse_open_request(s, member, now)
            branch = member.organisation
            own_branch = admin.id == branch.id
            general_branch_above = admin.level == rules.GENERAL_BRANCH and branch.parent_id == admin.id
            if not (own_branch or general_branch_above):
                raise DomainError("not_authorised", "member is not in this organisation or its branches")
            if to_org.id == branch.id:
                raise DomainError("same_organisation", "member is already in the receiving organisation")
            return cast("int", self._new_request(s, member, "admin", to_org, [to_org], now).id)

    def batch_transfer(self, general_branch_name: str, from_branch_name: str,
                       member_nos: Iterable[str], to_branch_name: str) -> list[int]:
        """批量接转 by a 团总支: at most 30 members, no approval, all or nothing."""
        member_nos = list(member_nos)
        if len(member_nos) > rules.BATCH_LIMIT:
            raise DomainError("too_many_members", f"{len(member_nos)} members, at most {rules.BATCH_LIMIT}")
        if not member_nos or len(set(member_nos)) != len(member_nos):
            raise DomainError("bad_member_list", "empty list or repeated member numbers")
        now = self.clock()
        with self._transaction() as s:
            general = _organisation(s, general_branch_name)
            if general.level != rules.GENERAL_BRANCH:
                raise DomainError("not_general_branch", "only a general branch may batch-transfer")
            from_branch = _organisation(s, from_branch_name)
            if from_branch.level != rules.BRANCH or from_branch.parent_id != general.id:
                raise DomainError("not_subordinate_branch", "sending branch is not under this general branch")
            to_branch = _organisation(s, to_branch_name)
            if to_branch.level != rules.BRANCH:
                raise DomainError("not_a_branch", "batch transfers go to a branch")
            if to_branch.id == from_branch.id:
                raise DomainError("same_organisation", "sending and receiving branch are the same")
            ids = []
            for member_no in member_nos:
                member = _member(s, member_no, lock=True)
                if member.organisation_id != from_branch.id:
                    raise DomainError("not_in_branch", f"member {member_no} is not in the sending branch")
                self._refuse_open_request(s, member, now)
                req = TransferRequest(member=member, kind="batch", from_org=from_branch, to_org=to_branch,
                                      status="completed", created_at=now, closed_at=now)
                s.add(req)
                member.organisation = to_branch
                _event(s, req, "created", now,
                       {"kind": "batch", "from_org_id": from_branch.id, "to_org_id": to_branch.id})
                _event(s, req, "completed", now, {"organisation_id": to_branch.id})
                s.flush()
                ids.append(req.id)
            return ids

    # -- what the bot asks -------------------------------------------------

    def birth_year(self, member_no: str) -> int | None:
        """The birth year on file (the destination guide need not ask the age)."""
        with self._transaction() as s:
            return cast("int | None", _member(s, member_no).birth_year)

    def member_status(self, member_no: str) -> MemberStatus:
        now = self.clock()
        with self._transaction() as s:
            member = _member(s, member_no, lock=True)
            # The steps, their organisations and both ends in the same round trips,
            # not one query per step: every status turn reads them all.
            req = s.execute(
                select(TransferRequest).where(TransferRequest.member_id == member.id)
                .order_by(TransferRequest.created_at.desc(), TransferRequest.id.desc()).limit(1)
                .options(selectinload(TransferRequest.steps).joinedload(ApprovalStep.organisation),
                         joinedload(TransferRequest.from_org), joinedload(TransferRequest.to_org))
            ).scalar_one_or_none()
            if req is None:
                return _status(member, None, (), None, None, rules.member_actions(None, False))
            chain = self._settle(s, req, now)
            steps = tuple(
                StepView(st.position, row.organisation.name, row.organisation.contact,
                         st.received_at, st.deadline, st.decision, st.decided_at)
                for row, st in zip(req.steps, chain.steps, strict=False)
            )
            view = RequestView(req.id, req.kind, req.status, req.from_org.name, req.to_org.name,
                               req.to_org.level, req.to_org.province, req.created_at, req.closed_at,
                               req.termination_reason)
            if req.status == "pending" and chain.current is not None:
                contact_org = req.steps[chain.current.position - 1].organisation
            elif req.status in ("awaiting_assignment", "terminated"):
                contact_org = req.to_org
            elif req.status == "completed":
                contact_org = member.organisation
            else:
                contact_org = None
            withdrawable = rules.can_withdraw(req.kind, req.status, chain)
            return _status(member, view, steps, chain, contact_org,
                           rules.member_actions(req.status, withdrawable))

    # -- internals ---------------------------------------------------------

    def _new_request(self, s: Session, member: Member, kind: str, to_org: Organisation,
                     chain: list[Organisation], now: datetime) -> TransferRequest:
        req = TransferRequest(member=member, kind=kind, from_org=member.organisation, to_org=to_org,
                              status="pending", created_at=now)
        req.steps = [ApprovalStep(position=i, organisation=org, received_at=now if i == 1 else None)
                     for i, org in enumerate(chain, start=1)]
        s.add(req)
        _event(s, req, "created", now,
               {"kind": kind, "from_org_id": member.organisation_id, "to_org_id": to_org.id})
        s.flush()
        return req

    def _refuse_open_request(self, s: Session, member: Member, now: datetime) -> None:
        open_requests = s.execute(
            select(TransferRequest).where(TransferRequest.member_id == member.id,
                                          TransferRequest.status.in_(rules.OPEN_STATUSES))
            .with_for_update()
        ).scalars().all()
        for req in open_requests:
            self._settle(s, req, now)
            if req.status in rules.OPEN_STATUSES:
                raise DomainError("open_request_exists", f"member has open request {req.id}")

    def _settle(self, s: Session, req: TransferRequest, now: datetime) -> rules.ChainState:
        until = req.closed_at if req.status in ("withdrawn", "terminated") else None
        chain = rules.chain_state(req.steps, now, until)
        if req.status != "pending":
            return chain
        for row, st in zip(req.steps, chain.steps, strict=False):
            if row.received_at is None and st.received_at is not None:
                row.received_at = st.received_at
            if row.decision is None and st.decision == "default_approved" and st.decided_at is not None:
                row.decision, row.decided_at = st.decision, st.decided_at
                _event(s, req, "default_approved", st.decided_at, {"position": row.position})
        if chain.finished_at is not None:
            self._finish(s, req, chain.finished_at)
        return chain

    def _finish(self, s: Session, req: TransferRequest, at: datetime) -> None:
        req.status = rules.status_when_finished(req.to_org.level)
        if req.status == "completed":
            req.closed_at = at
            req.member.organisation = req.to_org
            _event(s, req, "completed", at, {"organisation_id": req.to_org_id})
        else:
            _event(s, req, "awaiting_assignment", at)


def _member(s: Session, member_no: str, lock: bool = False) -> Member:
    query = select(Member).where(Member.member_no == member_no)
    member = s.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if member is None:
        raise DomainError("unknown_member", "no such member number")
    return cast("Member", member)


def _organisation(s: Session, name: str) -> Organisation:
    org = s.execute(select(Organisation).where(Organisation.name == name)).scalar_one_or_none()
    if org is None:
        raise DomainError("unknown_organisation", "no organisation of that name")
    return cast("Organisation", org)


def _request(s: Session, request_id: int) -> TransferRequest:
    req = s.execute(
        select(TransferRequest).where(TransferRequest.id == request_id).with_for_update()
    ).scalar_one_or_none()
    if req is None:
        raise DomainError("unknown_request", f"no request {request_id}")
    return cast("TransferRequest", req)


def _is_under(org: Organisation, ancestor: Organisation) -> bool:
    parent = org.parent
    while parent is not None:
        if parent.id == ancestor.id:
            return True
        parent = parent.parent
    return False


def _event(s: Session, req: TransferRequest, kind: str, at: datetime, detail: dict[str, Any] | None = None) -> None:
    s.add(TransferEvent(request=req, at=at, kind=kind, detail=detail))


def _status(member: Member, request: RequestView | None, steps: tuple[StepView, ...],
            chain: rules.ChainState | None, contact_org: Organisation | None,
            actions: tuple[str, ...]) -> MemberStatus:
    current = chain.current if chain is not None else None
    following = steps[current.position] if current is not None and current.position < len(steps) else None
    return MemberStatus(
        member_no=member.member_no,
        masked_name=rules.mask_name(member.name),
        organisation=member.organisation.name,
        organisation_contact=member.organisation.contact,
        request=request,
        steps=steps,
        current_position=current.position if current else None,
        received_at=current.received_at if current else None,
        deadline=current.deadline if current else None,
        days_left=chain.days_left if chain is not None else None,
        contact_organisation=contact_org.name if contact_org is not None else None,
        contact=contact_org.contact if contact_org is not None else None,
        next_organisation=following.organisation if following else None,
        actions=actions,
    )
