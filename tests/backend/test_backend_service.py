"""The transfer operations on the demo data, on every test database."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import executed_statements, starts_with
from tuanjian.backend.demo import (
    BEIJING_BRANCH,
    BRANCH_1,
    BRANCH_2,
    COMPANY_BRANCH,
    COMPANY_COMMITTEE,
    STREET_BRANCH,
)
from tuanjian.backend.models import ApprovalStep, Member, Organisation, TransferEvent, TransferRequest
from tuanjian.backend.rules import DomainError

GENERAL_BRANCH = "南京示范大学计算机学院团总支"
UNIVERSITY = "南京示范大学团委"

pytestmark = pytest.mark.usefixtures("demo")


def request_id(service, member_no):
    return service.member_status(member_no).request.id


def events(sessions, req_id):
    with sessions() as s:
        return s.execute(select(TransferEvent.kind, TransferEvent.at, TransferEvent.detail)
                         .where(TransferEvent.request_id == req_id).order_by(TransferEvent.id)).all()


def counts(sessions):
    with sessions() as s:
        tables = (Organisation, Member, TransferRequest, ApprovalStep, TransferEvent)
        rows = {t.__tablename__: s.execute(select(func.count()).select_from(t)).scalar_one() for t in tables}
        rows["placement"] = s.execute(select(Member.member_no, Member.organisation_id)
                                      .order_by(Member.member_no)).all()
        return rows


def refused(code, operation, *args):
    with pytest.raises(DomainError) as error:
        operation(*args)
    assert error.value.code == code


# -- every demo member (demo-data.md) --------------------------------------

@pytest.mark.parametrize("member_no, status, position, contact_org, days_left, actions", [
    ("2019001", "pending", 3, COMPANY_BRANCH, 11, ("wait", "contact", "withdraw")),
    ("2019002", "terminated", None, STREET_BRANCH, None, ("start_new", "contact")),
    ("2019003", "completed", None, BEIJING_BRANCH, None, ("report_to_new_branch",)),
    ("2019004", "pending", 1, BRANCH_2, 13, ("wait", "contact", "withdraw")),
    ("2019005", None, None, None, None, ("start_request",)),
    ("2019006", "awaiting_assignment", None, COMPANY_COMMITTEE, None, ("wait", "contact")),
    ("2019007", "pending", 3, COMPANY_BRANCH, 14, ("wait", "contact", "withdraw")),
])
def test_demo_member_status(service, member_no, status, position, contact_org, days_left, actions):
    st = service.member_status(member_no)
    assert (st.request.status if st.request else None) == status
    assert st.current_position == position
    assert st.contact_organisation == contact_org
    assert st.days_left == days_left
    assert st.actions == actions
    if contact_org is not None:
        assert st.contact
    assert len(st.steps) == (4 if status else 0)


def test_pending_member_sees_the_steps_and_the_next_one(service, clock):
    st = service.member_status("2019001")
    assert [s.organisation for s in st.steps] == [BRANCH_1, GENERAL_BRANCH, COMPANY_BRANCH, COMPANY_COMMITTEE]
    assert [s.decision for s in st.steps] == ["approved", "approved", "pending", None]
    assert st.received_at == clock.now - timedelta(days=4)
    assert st.deadline == clock.now + timedelta(days=11)
    assert st.next_organisation == COMPANY_COMMITTEE
    assert st.organisation == BRANCH_1


def test_demo_default_approval_is_derived_and_written_down(service, sessions, clock):
    st = service.member_status("2019007")
    assert [s.decision for s in st.steps] == ["approved", "default_approved", "pending", None]
    assert st.steps[1].decided_at == clock.now - timedelta(days=1)
    assert st.received_at == clock.now - timedelta(days=1)
    kinds = [kind for kind, _, _ in events(sessions, st.request.id)]
    assert kinds == ["created", "approved", "default_approved"]
    assert service.member_status("2019007") == st  # settling twice writes nothing more
    assert len(events(sessions, st.request.id)) == 3


def test_completed_member_is_in_the_new_branch(service):
    st = service.member_status("2019003")
    assert st.organisation == BEIJING_BRANCH
    assert st.request.to_province == "北京"
    assert all(s.decision == "approved" for s in st.steps)


def test_timestamps_come_back_timezone_aware(service, clock):
    st = service.member_status("2019002")
    assert st.request.created_at == clock.now - timedelta(days=40)
    assert st.request.created_at.utcoffset() == timedelta(0)
    assert st.request.termination_reason == "receiving_organisation_did_not_act"


# -- the 15-day rule through the service ----------------------------------

def test_fifteen_day_boundary_on_a_new_request(service, clock):
    rid = service.start_request("2019005", COMPANY_BRANCH)
    clock.advance(days=15, seconds=-1)
    st = service.member_status("2019005")
    assert (st.current_position, st.days_left) == (1, 1)
    clock.advance(seconds=1)
    st = service.member_status("2019005")
    assert st.steps[0].decision == "default_approved"
    assert (st.current_position, st.days_left) == (2, 15)
    refused("not_current_step", service.approve, rid, 1)
    assert service.approve(rid, 2) == "pending"


def test_chain_of_default_approvals_completes_the_request(service, clock):
    rid = service.start_request("2019005", COMPANY_BRANCH)
    clock.advance(days=30)
    st = service.member_status("2019005")
    assert [s.decision for s in st.steps] == ["default_approved", "default_approved", "pending", None]
    assert st.days_left == 15
    clock.advance(days=30)
    st = service.member_status("2019005")
    assert st.request.status == "completed"
    assert st.request.closed_at == clock.now
    assert st.organisation == COMPANY_BRANCH
    assert st.actions == ("report_to_new_branch",)
    refused("not_pending", service.approve, rid, 4)


# -- approvals and the event log ---------------------------------------------

def test_every_state_change_is_logged(service, sessions, clock):
    start = clock.now
    rid = service.start_request("2019005", COMPANY_BRANCH)
    clock.advance(days=1)
    assert service.approve(rid, 1) == "pending"
    clock.advance(days=20)  # step 2 approved by default at day 16
    assert service.approve(rid, 3) == "pending"
    clock.advance(days=1)
    assert service.approve(rid, 4) == "completed"
    log = events(sessions, rid)
    assert [kind for kind, _, _ in log] == ["created", "approved", "default_approved", "approved", "approved",
                                            "completed"]
    assert [at - start for _, at, _ in log] == [timedelta(days=d) for d in (0, 1, 16, 21, 22, 22)]
    assert [detail.get("position") for _, _, detail in log[1:5]] == [1, 2, 3, 4]
    assert service.member_status("2019005").organisation == COMPANY_BRANCH


def test_only_the_current_step_can_approve(service):
    rid = request_id(service, "2019001")
    refused("not_current_step", service.approve, rid, 4)
    refused("not_current_step", service.approve, rid, 2)
    refused("unknown_request", service.approve, 999999, 1)


# -- withdrawal (FAQ 3) ----------------------------------------------------

def test_withdraw_while_the_own_branch_has_not_decided(service, sessions):
    rid = request_id(service, "2019004")
    service.withdraw(rid)
    st = service.member_status("2019004")
    assert st.request.status == "withdrawn" and st.actions == ("start_new",)
    assert [kind for kind, _, _ in events(sessions, rid)][-1] == "withdrawn"
    refused("not_withdrawable", service.withdraw, rid)
    service.start_request("2019004", STREET_BRANCH)


def test_withdraw_refused_once_the_receiving_branch_approved(service):
    rid = request_id(service, "2019001")
    assert "withdraw" in service.member_status("2019001").actions
    service.approve(rid, 3)
    assert "withdraw" not in service.member_status("2019001").actions
    refused("not_withdrawable", service.withdraw, rid)


def test_withdraw_refused_once_the_receiving_branch_approved_by_default(service, clock):
    rid = request_id(service, "2019001")
    clock.advance(days=11, seconds=-1)
    service.withdraw(rid)  # one second before the default approval: still possible
    rid = service.start_request("2019001", COMPANY_BRANCH)
    for position in (1, 2):
        service.approve(rid, position)
    clock.advance(days=15)
    refused("not_withdrawable", service.withdraw, rid)


def test_withdraw_refused_while_awaiting_assignment(service):
    refused("not_withdrawable", service.withdraw, request_id(service, "2019006"))


# -- termination (FAQ 2) and one open request at a time --------------------

def test_open_request_blocks_a_new_one(service):
    refused("open_request_exists", service.start_request, "2019001", STREET_BRANCH)
    refused("open_request_exists", service.start_request, "2019006", STREET_BRANCH)
    service.start_request("2019005", STREET_BRANCH)
    refused("open_request_exists", service.start_request, "2019005", COMPANY_BRANCH)


def test_terminated_request_allows_a_new_one(service, sessions):
    old = request_id(service, "2019001")
    service.terminate(old, "receiving_organisation_did_not_act")
    st = service.member_status("2019001")
    assert st.request.status == "terminated" and st.actions == ("start_new", "contact")
    assert st.contact_organisation == COMPANY_BRANCH
    assert events(sessions, old)[-1][0] == "terminated"
    refused("not_open", service.terminate, old, "again")
    new = service.start_request("2019001", COMPANY_BRANCH)
    st = service.member_status("2019001")
    assert st.request.id == new and st.current_position == 1 and st.days_left == 15


def test_start_request_refusals(service):
    refused("unknown_member", service.start_request, "0000000", COMPANY_BRANCH)
    refused("unknown_organisation", service.start_request, "2019005", "不存在的团支部")
    refused("same_organisation", service.start_request, "2019005", BRANCH_2)
    refused("no_superior", service.start_request, "2019005", "共青团杭州市委员会")


# -- 办理转出 by an organisation (FAQ 10, 11) -------------------------------

def test_admin_transfer_to_a_branch(service, sessions):
    rid = service.admin_transfer_out(BRANCH_2, "2019005", COMPANY_BRANCH)
    st = service.member_status("2019005")
    assert st.request.kind == "admin"
    assert [s.organisation for s in st.steps] == [COMPANY_BRANCH]
    assert st.current_position == 1 and st.days_left == 15
    assert service.approve(rid, 1) == "completed"
    assert service.member_status("2019005").organisation == COMPANY_BRANCH
    assert [kind for kind, _, _ in events(sessions, rid)] == ["created", "approved", "completed"]


def test_admin_transfer_to_a_committee_waits_for_assignment(service, sessions):
    rid = service.admin_transfer_out(GENERAL_BRANCH, "2019005", COMPANY_COMMITTEE)
    assert service.approve(rid, 1) == "awaiting_assignment"
    st = service.member_status("2019005")
    assert st.actions == ("wait", "contact") and st.contact_organisation == COMPANY_COMMITTEE
    refused("not_subordinate_branch", service.assign_branch, rid, BRANCH_1)
    refused("not_subordinate_branch", service.assign_branch, rid, COMPANY_COMMITTEE)
    service.assign_branch(rid, COMPANY_BRANCH)
    st = service.member_status("2019005")
    assert st.request.status == "completed" and st.organisation == COMPANY_BRANCH
    assert [kind for kind, _, _ in events(sessions, rid)] == ["created", "approved", "awaiting_assignment",
                                                             "completed"]
    refused("not_awaiting_assignment", service.assign_branch, rid, COMPANY_BRANCH)


def test_demo_assignment_completes(service):
    service.assign_branch(request_id(service, "2019006"), COMPANY_BRANCH)
    assert service.member_status("2019006").organisation == COMPANY_BRANCH


def test_admin_transfer_only_by_the_branch_or_its_general_branch(service):
    refused("not_authorised", service.admin_transfer_out, BRANCH_1, "2019005", COMPANY_BRANCH)
    refused("not_authorised", service.admin_transfer_out, UNIVERSITY, "2019005", COMPANY_BRANCH)
    refused("open_request_exists", service.admin_transfer_out, BRANCH_2, "2019004", COMPANY_BRANCH)


# -- 批量接转 (FAQ 11) ----------------------------------------------------

@pytest.fixture
def class_of_31(sessions):
    with sessions() as s, s.begin():
        branch = s.execute(select(Organisation).where(Organisation.name == BRANCH_1)).scalar_one()
        s.add_all(Member(member_no=f"2020{i:03d}", name="测试", phone_last4="0000", organisation=branch)
                  for i in range(31))
    return [f"2020{i:03d}" for i in range(31)]


def test_batch_of_thirty(service, sessions, class_of_31):
    before = counts(sessions)
    ids = service.batch_transfer(GENERAL_BRANCH, BRANCH_1, class_of_31[:30], BRANCH_2)
    after = counts(sessions)
    assert len(ids) == 30
    assert after["transfer_requests"] - before["transfer_requests"] == 30
    assert after["transfer_events"] - before["transfer_events"] == 60
    assert after["approval_steps"] == before["approval_steps"]
    st = service.member_status(class_of_31[0])
    assert st.organisation == BRANCH_2
    assert (st.request.kind, st.request.status, st.steps) == ("batch", "completed", ())
    assert service.member_status(class_of_31[30]).organisation == BRANCH_1


def test_batch_of_thirty_one_changes_nothing(service, sessions, class_of_31):
    before = counts(sessions)
    refused("too_many_members", service.batch_transfer, GENERAL_BRANCH, BRANCH_1, class_of_31, BRANCH_2)
    assert counts(sessions) == before


def test_batch_failing_half_way_changes_nothing(service, sessions, class_of_31):
    before = counts(sessions)
    refused("unknown_member", service.batch_transfer, GENERAL_BRANCH, BRANCH_1,
            class_of_31[:29] + ["9999999"], BRANCH_2)
    refused("not_in_branch", service.batch_transfer, GENERAL_BRANCH, BRANCH_1,
            class_of_31[:29] + ["2019004"], BRANCH_2)
    assert counts(sessions) == before


def test_batch_only_by_a_general_branch_over_its_own_branches(service, class_of_31):
    members = class_of_31[:2]
    refused("not_general_branch", service.batch_transfer, UNIVERSITY, BRANCH_1, members, BRANCH_2)
    refused("not_general_branch", service.batch_transfer, BRANCH_1, BRANCH_1, members, BRANCH_2)
    refused("not_subordinate_branch", service.batch_transfer, GENERAL_BRANCH, COMPANY_BRANCH, members, BRANCH_2)
    refused("not_a_branch", service.batch_transfer, GENERAL_BRANCH, BRANCH_1, members, COMPANY_COMMITTEE)
    refused("bad_member_list", service.batch_transfer, GENERAL_BRANCH, BRANCH_1, [], BRANCH_2)


# -- verification, masking, input never reaching SQL as text -------------------

def test_status_masks_the_name(service):
    st = service.member_status("2019001")
    assert st.masked_name == "张*"
    assert "张明" not in repr(st)


def test_status_reads_the_steps_and_their_organisations_in_a_fixed_number_of_queries(service, connection):
    """Every status turn reads the request; one query per step (lazy loads)
    made the action server and the database the replicas' bottleneck."""
    with executed_statements(connection) as executed:
        status = service.member_status("2019001")
    statements = starts_with(executed, "SELECT")
    assert [step.organisation for step in status.steps] == [BRANCH_1, GENERAL_BRANCH, COMPANY_BRANCH,
                                                            COMPANY_COMMITTEE]
    assert len(statements) <= 3, statements
