"""Channel bindings (OpenID ↔ member), on every test database."""
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from tuanjian.backend import db
from tuanjian.backend.models import Base, ChannelBinding, Member
from tuanjian.backend.rules import DomainError
from tuanjian.backend.verification import VerificationService

pytestmark = pytest.mark.usefixtures("demo")


@pytest.fixture
def service(sessions, clock):
    return VerificationService(sessions, clock)

OPENID = "oUser0123456789abcdefghijkl"


def bindings(sessions):
    with sessions() as s:
        return s.execute(select(ChannelBinding.channel, ChannelBinding.external_id, Member.member_no,
                                ChannelBinding.created_at)
                         .join(Member).order_by(ChannelBinding.id)).all()


def test_bind_then_look_up(service, sessions, clock):
    assert service.bound_member("wechat", OPENID) is None
    service.bind("wechat", OPENID, "2019001")
    assert service.bound_member("wechat", OPENID) == "2019001"
    [(channel, external_id, member_no, created_at)] = bindings(sessions)
    assert (channel, external_id, member_no) == ("wechat", OPENID, "2019001")
    assert created_at == clock.now and created_at.utcoffset().total_seconds() == 0


def test_binding_again_replaces_the_member(service, sessions, clock):
    service.bind("wechat", OPENID, "2019001")
    clock.advance(minutes=5)
    service.bind("wechat", OPENID, "2019002")
    service.bind("wechat", OPENID, "2019002")
    assert service.bound_member("wechat", OPENID) == "2019002"
    assert [(b.member_no, b.created_at) for b in bindings(sessions)] == [("2019002", clock.now)]


def test_ids_are_per_channel_and_a_member_may_have_several(service):
    service.bind("wechat", OPENID, "2019001")
    service.bind("wechat", "oOtherUser", "2019001")
    service.bind("web", OPENID, "2019003")
    assert service.bound_member("wechat", OPENID) == "2019001"
    assert service.bound_member("wechat", "oOtherUser") == "2019001"
    assert service.bound_member("web", OPENID) == "2019003"
    assert service.bound_member("web", "oOtherUser") is None


def test_unbind(service):
    service.bind("wechat", OPENID, "2019001")
    service.bind("wechat", "oOtherUser", "2019001")
    assert service.unbind("wechat", OPENID) is True
    assert service.unbind("wechat", OPENID) is False
    assert service.bound_member("wechat", OPENID) is None
    assert service.bound_member("wechat", "oOtherUser") == "2019001"


@pytest.mark.parametrize("channel, external_id, member_no, code", [
    ("wechat", OPENID, "9999999", "unknown_member"),
    ("", OPENID, "2019001", "bad_binding"),
    ("wechat", "", "2019001", "bad_binding"),
    ("wechat", "o" * 129, "2019001", "bad_binding"),
    ("w" * 33, OPENID, "2019001", "bad_binding"),
    ("wechat", None, "2019001", "bad_binding"),
])
def test_refused_bindings_write_nothing(service, sessions, channel, external_id, member_no, code):
    service.bind("wechat", OPENID, "2019001")
    with pytest.raises(DomainError) as error:
        service.bind(channel, external_id, member_no)
    assert error.value.code == code
    assert [b.member_no for b in bindings(sessions)] == ["2019001"]


def test_user_input_is_only_a_parameter(service):
    sneaky = "x' OR '1'='1"
    service.bind("wechat", OPENID, "2019001")
    assert service.bound_member("wechat", sneaky) is None
    assert service.unbind("wechat", sneaky) is False


def test_database_enforces_uniqueness_and_the_member(sessions, clock):
    with sessions() as s, s.begin():
        member_id = s.execute(select(Member.id).where(Member.member_no == "2019001")).scalar_one()
        s.add(ChannelBinding(channel="wechat", external_id=OPENID, member_id=member_id, created_at=clock.now))
    with pytest.raises(IntegrityError):
        with sessions() as s, s.begin():
            s.add(ChannelBinding(channel="wechat", external_id=OPENID, member_id=member_id, created_at=clock.now))
    with pytest.raises(IntegrityError):
        with sessions() as s, s.begin():
            s.add(ChannelBinding(channel="wechat", external_id="o2", member_id=987654, created_at=clock.now))
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(ChannelBinding)).scalar_one() == 1


def test_migration_0002_matches_the_model_and_downgrades(connection):
    context = MigrationContext.configure(connection)
    assert context.get_current_revision() == "0006"
    assert compare_metadata(context, Base.metadata) == []
    config = db._alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "0001")
    assert "channel_bindings" not in inspect(connection).get_table_names()
    assert "members" in inspect(connection).get_table_names()
    command.upgrade(config, "head")
    assert "channel_bindings" in inspect(connection).get_table_names()
