"""The demo data contract (docs/source/demo-data.md) and its loader."""
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from tuanjian.backend.demo import load_demo_if_empty
from tuanjian.backend.models import Member, Organisation
from tuanjian.backend.rules import LEVELS

ROOT = Path(__file__).resolve().parents[2]


def test_demo_loads_once_and_matches_the_contract(sessions, clock):
    assert load_demo_if_empty(sessions, clock) is True
    assert load_demo_if_empty(sessions, clock) is False
    with sessions() as s:
        orgs = s.execute(select(Organisation)).scalars().all()
        by_name = {o.name: o for o in orgs}
        members = s.execute(select(Member.member_no, Member.name, Member.phone_last4)
                            .order_by(Member.member_no)).all()
        assert {o.level for o in orgs} == set(LEVELS)
        assert {o.province for o in orgs} == {"江苏", "浙江", "北京"}
        assert all(o.contact for o in orgs)
        chain = [by_name["计算机学院2019级1班团支部"].parent, by_name["计算机学院2019级2班团支部"].parent]
        assert chain[0] is chain[1] and chain[0].level == "团总支" and chain[0].parent.level == "团委"
        assert by_name["杭州云帆科技有限公司团支部"].parent.level == "团委"
        assert by_name["东湖街道学社衔接临时团支部"].level == "团支部"
    assert [tuple(m) for m in members] == [
        ("2019001", "张明", "1234"), ("2019002", "李华", "5678"), ("2019003", "王芳", "2468"),
        ("2019004", "赵强", "1357"), ("2019005", "陈静", "9753"), ("2019006", "刘洋", "8642"),
        ("2019007", "孙丽", "1122"),
    ]


def test_cli_resets_and_loads_only_when_empty(tmp_path):
    env = dict(os.environ, TUANJIAN_DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}")
    def run(*args):
        return subprocess.run([sys.executable, "-m", "tuanjian.backend.demo", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True).stdout
    assert "demo data loaded" in run()
    assert "left as it is" in run()
    assert "demo data loaded" in run("--reset")
