"""Demo data of docs/source/demo-data.md, relative to the moment it is loaded.

    python -m tuanjian.backend.demo           migrate, load the demo if the database is empty
    python -m tuanjian.backend.demo --reset   drop and recreate through the migrations, load the demo
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanjian.backend import db, rules
from tuanjian.backend.models import ApprovalStep, Member, Organisation, TransferEvent, TransferRequest

# name, level, province, parent, contact
ORGANISATIONS = [
    ("共青团南京市委员会", "团委", "江苏", None, "025-83000100（组织部）"),
    ("南京示范大学团委", "团委", "江苏", "共青团南京市委员会", "025-83000200（学生活动中心 201 室）"),
    ("南京示范大学计算机学院团总支", "团总支", "江苏", "南京示范大学团委", "025-83000210（计算机学院楼 105 室）"),
    ("计算机学院2019级1班团支部", "团支部", "江苏", "南京示范大学计算机学院团总支", "团支书 王老师 025-83000211"),
    ("计算机学院2019级2班团支部", "团支部", "江苏", "南京示范大学计算机学院团总支", "团支书 周老师 025-83000212"),
    ("东湖街道团工委", "团工委", "江苏", "共青团南京市委员会", "025-83000300（东湖街道办事处 3 楼）"),
    ("东湖街道学社衔接临时团支部", "团支部", "江苏", "东湖街道团工委", "025-83000301（东湖街道党群服务中心）"),
    ("共青团杭州市委员会", "团委", "浙江", None, "0571-87000100（组织部）"),
    ("杭州云帆科技有限公司团委", "团委", "浙江", "共青团杭州市委员会", "0571-87000200（人力资源部）"),
    ("杭州云帆科技有限公司团支部", "团支部", "浙江", "杭州云帆科技有限公司团委", "0571-87000201（行政楼 8 楼）"),
    ("共青团北京市海淀区委员会", "团委", "北京", None, "010-62000100（组织部）"),
    ("北京星河信息技术有限公司团支部", "团支部", "北京", "共青团北京市海淀区委员会", "010-62000201（综合办公室）"),
]

BRANCH_1 = "计算机学院2019级1班团支部"
BRANCH_2 = "计算机学院2019级2班团支部"
COMPANY_BRANCH = "杭州云帆科技有限公司团支部"
COMPANY_COMMITTEE = "杭州云帆科技有限公司团委"
STREET_BRANCH = "东湖街道学社衔接临时团支部"
BEIJING_BRANCH = "北京星河信息技术有限公司团支部"

# member no, name, phone last 4, birth year, branch (before any transfer)
MEMBERS = [
    ("2019001", "张明", "1234", 2001, BRANCH_1),
    ("2019002", "李华", "5678", 2001, BRANCH_1),
    ("2019003", "王芳", "2468", 2000, BRANCH_2),
    ("2019004", "赵强", "1357", 2001, BRANCH_2),
    ("2019005", "陈静", "9753", 2001, BRANCH_2),
    ("2019006", "刘洋", "8642", 2000, BRANCH_1),
    ("2019007", "孙丽", "1122", 2001, BRANCH_2),
]

# Member-initiated requests: member no, receiving organisation, days ago created,
# days ago each step decided (explicit approvals only), outcome
# (status, days ago closed or None, termination reason or None).
REQUESTS: list[tuple[str, str, int, list[int], tuple[str, int | None, str | None]]] = [
    # step 3 (receiving branch) received 4 days ago: 11 days left
    ("2019001", COMPANY_BRANCH, 12, [9, 4], ("pending", None, None)),
    # step 3 received 36 days ago, terminated 14 days later (FAQ 2)
    ("2019002", STREET_BRANCH, 40, [38, 36], ("terminated", 22, "receiving_organisation_did_not_act")),
    ("2019003", BEIJING_BRANCH, 60, [58, 55, 50, 47], ("completed", 47, None)),
    # step 1 received 2 days ago: still withdrawable
    ("2019004", STREET_BRANCH, 2, [], ("pending", None, None)),
    # receiving organisation is a 团委: waits for it to assign a 团支部 (FAQ 10)
    ("2019006", COMPANY_COMMITTEE, 30, [28, 25, 20, 12], ("awaiting_assignment", None, None)),
    # step 2 received 16 days ago, never acted on: approved by default a day ago
    ("2019007", COMPANY_BRANCH, 18, [16], ("pending", None, None)),
]


def load_demo(session: Session, now: datetime) -> None:
    """Write the demo data into an empty database (the caller commits)."""
    def ago(days: int) -> datetime:
        return now - timedelta(days=days)

    orgs: dict[str, Organisation] = {}
    for name, level, province, parent, contact in ORGANISATIONS:
        orgs[name] = Organisation(name=name, level=level, province=province,
                                  parent=orgs[parent] if parent else None, contact=contact)
    members = {no: Member(member_no=no, name=name, phone_last4=last4, birth_year=year, organisation=orgs[branch])
               for no, name, last4, year, branch in MEMBERS}
    session.add_all(list(orgs.values()) + list(members.values()))
    session.flush()

    for member_no, to_name, created, decided, (status, closed, reason) in REQUESTS:
        member, to_org = members[member_no], orgs[to_name]
        branch = member.organisation
        req = TransferRequest(member=member, kind="member", from_org=branch, to_org=to_org,
                              status=status, created_at=ago(created),
                              closed_at=ago(closed) if closed is not None else None, termination_reason=reason)
        session.add(req)
        events = [TransferEvent(at=ago(created), kind="created",
                                detail={"kind": "member", "from_org_id": branch.id, "to_org_id": to_org.id})]
        received: int | None = created
        for position, org in enumerate([branch, branch.parent, to_org, to_org.parent], start=1):
            step = ApprovalStep(position=position, organisation=org)
            if received is not None:
                step.received_at = ago(received)
            if position <= len(decided):
                step.decided_at, step.decision = ago(decided[position - 1]), "approved"
                events.append(TransferEvent(at=step.decided_at, kind="approved", detail={"position": position}))
                received = decided[position - 1]
            else:
                received = None
            req.steps.append(step)
        if status == "completed":
            member.organisation = to_org
            events.append(TransferEvent(at=req.closed_at, kind="completed", detail={"organisation_id": to_org.id}))
        elif status == "awaiting_assignment":
            events.append(TransferEvent(at=ago(decided[-1]), kind="awaiting_assignment"))
        elif status == "terminated":
            events.append(TransferEvent(at=req.closed_at, kind="terminated", detail={"reason": reason}))
        req.events = events
    session.flush()


def load_demo_if_empty(sessions: Callable[[], Session] | None = None,
                       clock: Callable[[], datetime] = rules.utcnow) -> bool:
    """Load the demo unless there are organisations already; True when it loaded."""
    with (sessions or db.get_sessionmaker())() as session, session.begin():
        if session.execute(select(func.count()).select_from(Organisation)).scalar_one():
            return False
        load_demo(session, clock())
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuanjian.backend.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--reset", action="store_true", help="drop and recreate the schema, then load the demo")
    args = parser.parse_args(argv)
    if args.reset:
        db.reset()
    else:
        db.migrate()
    loaded = load_demo_if_empty()
    print(f"{db.get_engine().url.render_as_string(hide_password=True)}: "
          f"{'demo data loaded' if loaded else 'not empty, left as it is'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
