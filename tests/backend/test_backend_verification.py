"""Server-side verification: outcomes, throttle boundaries, expiry and sessions, on every test database."""
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, inspect, select

from tests.conftest import executed_statements, starts_with
from tuanjian.backend import db
from tuanjian.backend.models import ClosedConversation, Member, Verification, VerificationThrottle
from tuanjian.backend.rules import DomainError
from tuanjian.backend.verification import (
    CLOSED_KEPT,
    IDLE_TIMEOUT,
    LIMITS,
    TOUCHED_WITHIN,
    Conversation,
    ThrottleState,
    VerificationService,
    after_failure,
    minutes_locked,
)
from tuanjian.rasa_server.channels import web_session

pytestmark = pytest.mark.usefixtures("demo")

WEB = Conversation("web", "a" * 32, "1700000000.000000")
OTHER_WEB = Conversation("web", "b" * 32, "1700000000.000000")
WECHAT = Conversation("wechat", "oOpenId123", "1700000000.000000")
MEMBER = LIMITS["member"]


@pytest.fixture
def verifications(sessions, clock):
    return VerificationService(sessions, clock)


def rows(sessions, model):
    with sessions() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def fail(verifications, times, number="2019001", conversation=WEB, client=None):
    return [verifications.attempt(conversation, number, "0000", client).outcome for _ in range(times)]


# -- outcomes -----------------------------------------------------------------

def test_right_digits_verify_the_conversation_only(verifications):
    attempt = verifications.attempt(WEB, "2019001", "1234")
    assert (attempt.outcome, attempt.member_no, attempt.masked_name) == ("verified", "2019001", "张*")
    assert verifications.current(WEB) == "2019001"
    assert verifications.current(OTHER_WEB) is None
    assert verifications.current(Conversation("rest", WEB.external_id, WEB.session_key)) is None


@pytest.mark.parametrize("number, digits", [
    ("2019001", "4321"), ("2019001", ""), ("9999999", "1234"), ("2019001", None),
    ("2019001' OR '1'='1", "1234"), ("2019001", "1234' OR '1'='1"),
    ("2019001'; DROP TABLE members; --", "1234"), ("' OR 1=1 --", "' OR 1=1 --"),
])
def test_wrong_or_hostile_credentials_fail_alike(verifications, sessions, number, digits):
    members = rows(sessions, Member)
    assert verifications.attempt(WEB, number, digits).outcome == "failed"
    assert verifications.current(WEB) is None
    assert rows(sessions, Member) == members and rows(sessions, Verification) == 0


def test_a_bad_conversation_key_is_refused(verifications):
    with pytest.raises(DomainError):
        verifications.attempt(Conversation("", "x", ""), "2019001", "1234")
    with pytest.raises(DomainError):
        verifications.current(Conversation("web", "x" * 129, ""))


# -- the throttle, as a rule ----------------------------------------------------

def test_fifth_failure_in_the_window_locks_for_the_lock_time(clock):
    state = None
    for _ in range(MEMBER.failures - 1):
        state = after_failure(state, clock.now, MEMBER)
        assert state.locked_until is None
    state = after_failure(state, clock.now + MEMBER.window - timedelta(seconds=1), MEMBER)
    assert state.locked_until == clock.now + MEMBER.window - timedelta(seconds=1) + MEMBER.lock


def test_failures_spread_over_more_than_the_window_do_not_lock(clock):
    state = None
    for _ in range(MEMBER.failures - 1):
        state = after_failure(state, clock.now, MEMBER)
    state = after_failure(state, clock.now + MEMBER.window, MEMBER)  # a new window starts
    assert state == ThrottleState(1, clock.now + MEMBER.window, None)


def test_lock_minutes_round_up_and_end_exactly(clock):
    until = clock.now + timedelta(minutes=15)
    assert minutes_locked(until, clock.now) == 15
    assert minutes_locked(until, until - timedelta(seconds=1)) == 1
    assert minutes_locked(until, until) == 0
    assert minutes_locked(None, clock.now) == 0


# -- the throttle, in the backend ------------------------------------------------

def test_five_failures_lock_the_number_across_conversations_and_channels(verifications, clock):
    assert fail(verifications, 4) == ["failed"] * 4
    assert fail(verifications, 1, conversation=OTHER_WEB) == ["locked"]
    # The right digits, from a new conversation and another channel: refused unseen.
    attempt = verifications.attempt(WECHAT, "2019001", "1234")
    assert (attempt.outcome, attempt.locked_minutes) == ("locked", 15)
    assert verifications.current(WECHAT) is None
    clock.advance(minutes=14, seconds=59)
    assert verifications.attempt(WEB, "2019001", "1234").outcome == "locked"
    clock.advance(seconds=1)
    assert verifications.attempt(WEB, "2019001", "1234").outcome == "verified"


def test_a_number_that_does_not_exist_locks_the_same_way(verifications):
    assert fail(verifications, 5, number="2099999") == ["failed"] * 4 + ["locked"]
    assert verifications.attempt(OTHER_WEB, "2099999", "1234").locked_minutes == 15


def test_a_locked_attempt_writes_nothing(verifications, sessions):
    fail(verifications, 5)
    with sessions() as s:
        before = s.execute(select(VerificationThrottle.key, VerificationThrottle.failures,
                                  VerificationThrottle.locked_until)).all()
    fail(verifications, 3)
    with sessions() as s:
        assert s.execute(select(VerificationThrottle.key, VerificationThrottle.failures,
                                VerificationThrottle.locked_until)).all() == before
    assert rows(sessions, Verification) == 0


def test_a_locked_client_spraying_new_numbers_writes_nothing(verifications, sessions):
    limit = LIMITS["client"].failures
    for n in range(limit):
        verifications.attempt(WEB, f"20{n:05d}", "0000", client="ip-1")
    throttles = rows(sessions, VerificationThrottle)
    assert [verifications.attempt(WEB, f"30{n:05d}", "0000", client="ip-1").outcome
            for n in range(10)] == ["locked"] * 10
    assert rows(sessions, VerificationThrottle) == throttles


def test_a_new_client_on_a_locked_number_writes_nothing(verifications, sessions):
    fail(verifications, 5)
    throttles = rows(sessions, VerificationThrottle)
    assert verifications.attempt(OTHER_WEB, "2019001", "1234", client="ip-new").outcome == "locked"
    assert rows(sessions, VerificationThrottle) == throttles


def test_success_leaves_no_throttle_row_behind(verifications, sessions):
    assert verifications.attempt(WEB, "2019001", "1234", client="ip-1").outcome == "verified"
    assert rows(sessions, VerificationThrottle) == 0


def test_member_numbers_are_kept_only_as_keyed_digests(sessions, clock):
    typed = "13812345678"  # a whole phone number typed as the member number
    first = VerificationService(sessions, clock, throttle_key="one")
    first.attempt(WEB, typed, "0000")
    with sessions() as s:
        keys = s.execute(select(VerificationThrottle.key)).scalars().all()
    assert len(keys) == 1 and typed not in keys[0] and keys[0].startswith("member:")
    assert keys == [first.member_key(typed)]
    assert VerificationService(sessions, clock, throttle_key="two").member_key(typed) != keys[0]


def test_without_a_throttle_key_no_attempt_is_checked(sessions, clock, monkeypatch):
    monkeypatch.delenv("TUANJIAN_THROTTLE_KEY")
    with pytest.raises(RuntimeError):
        VerificationService(sessions, clock).attempt(WEB, "2019001", "1234")
    assert rows(sessions, Verification) == 0


def test_success_clears_the_numbers_failures(verifications):
    fail(verifications, 4)
    assert verifications.attempt(WEB, "2019001", "1234").outcome == "verified"
    assert fail(verifications, 4, conversation=OTHER_WEB) == ["failed"] * 4


def test_one_client_trying_many_numbers_is_locked(verifications):
    limit = LIMITS["client"].failures
    outcomes = [verifications.attempt(WEB, f"20{n:05d}", "0000", client="ip-1").outcome
                for n in range(limit)]
    assert outcomes == ["failed"] * (limit - 1) + ["locked"]
    # Even the right digits of an untouched number, from that client.
    assert verifications.attempt(OTHER_WEB, "2019002", "5678", client="ip-1").outcome == "locked"
    assert verifications.attempt(OTHER_WEB, "2019002", "5678", client="ip-2").outcome == "verified"


# -- expiry, sessions, ending -----------------------------------------------------

def test_a_read_soon_after_the_last_or_of_no_verification_writes_and_locks_nothing(verifications, clock, connection):
    """Most turns of a verified member read the verification: a row lock and a
    write each time made the database a bottleneck of the replicas."""
    verifications.attempt(WEB, "2019001", "1234")
    with executed_statements(connection) as executed:
        clock.advance(seconds=TOUCHED_WITHIN.total_seconds() - 1)
        assert verifications.current(WEB) == "2019001"
        assert verifications.current(OTHER_WEB) is None  # never verified: most conversations
        assert starts_with(executed, "UPDATE", "INSERT", "DELETE") == []
        assert not any("FOR UPDATE" in statement for statement, _ in executed)
        clock.advance(seconds=1)
        assert verifications.current(WEB) == "2019001"
        assert starts_with(executed, "UPDATE")
    # The idle time runs from that last write; a read of another session still ends it.
    clock.advance(seconds=IDLE_TIMEOUT.total_seconds() - 1)
    assert verifications.current(WEB) == "2019001"
    assert verifications.current(Conversation(WEB.channel, WEB.external_id, "1800000000.000000")) is None
    assert verifications.current(WEB) is None


def test_a_clock_set_back_takes_the_locked_path(verifications, clock, connection):
    """A read dated before the last write is not "touched within a minute": it
    goes the locked way, which keeps the verification and dates it anew."""
    verifications.attempt(WEB, "2019001", "1234")
    clock.advance(seconds=-30)
    with executed_statements(connection) as executed:
        assert verifications.current(WEB) == "2019001"
    assert starts_with(executed, "UPDATE")
    assert TOUCHED_WITHIN < IDLE_TIMEOUT / 10  # the fast path can never outlive the idle time


def test_verification_ends_after_idle_time_and_reading_keeps_it(verifications, clock):
    verifications.attempt(WEB, "2019001", "1234")
    clock.advance(seconds=IDLE_TIMEOUT.total_seconds() - 1)
    assert verifications.current(WEB) == "2019001"  # read: idle time starts again
    clock.advance(seconds=IDLE_TIMEOUT.total_seconds() - 1)
    assert verifications.current(WEB) == "2019001"
    clock.advance(seconds=IDLE_TIMEOUT.total_seconds())
    assert verifications.current(WEB) is None


def test_a_new_session_is_not_verified(verifications, sessions):
    verifications.attempt(WEB, "2019001", "1234")
    assert verifications.current(Conversation(WEB.channel, WEB.external_id, "1700003600.000000")) is None
    assert verifications.current(WEB) is None  # the old record is gone
    assert rows(sessions, Verification) == 0


def test_end_forgets_the_verification(verifications):
    verifications.attempt(WEB, "2019001", "1234")
    assert verifications.end(WEB.channel, WEB.external_id) is True
    assert verifications.current(WEB) is None
    assert verifications.end(WEB.channel, WEB.external_id) is False


def test_a_closed_conversation_stays_closed_and_unverified(verifications, clock, sessions):
    verifications.attempt(WEB, "2019001", "1234")
    verifications.close(WEB.channel, WEB.external_id)
    assert verifications.is_closed(WEB.channel, WEB.external_id)
    assert not verifications.is_closed(OTHER_WEB.channel, OTHER_WEB.external_id)
    assert verifications.current(WEB) is None
    verifications.close(WEB.channel, WEB.external_id)  # twice: no error
    assert rows(sessions, ClosedConversation) == 1


def test_closures_are_kept_longer_than_a_web_token_lives_then_purged(verifications, clock, sessions):
    assert CLOSED_KEPT.total_seconds() > web_session.MAX_AGE
    verifications.close(WEB.channel, WEB.external_id)
    clock.advance(seconds=CLOSED_KEPT.total_seconds() + 1)
    verifications.close(OTHER_WEB.channel, OTHER_WEB.external_id)  # purges the old one
    assert not verifications.is_closed(WEB.channel, WEB.external_id)
    assert rows(sessions, ClosedConversation) == 1


def test_a_binding_verifies_a_later_visit_until_unbound(verifications):
    verifications.attempt(WECHAT, "2019001", "1234", bind=True)
    later = Conversation(WECHAT.channel, WECHAT.external_id, "1800000000.000000")
    assert verifications.current(later) is None  # without use_binding
    assert verifications.current(later, use_binding=True) == "2019001"
    assert verifications.current(later) == "2019001"
    assert verifications.unbind(WECHAT.channel, WECHAT.external_id) is True
    assert verifications.current(later, use_binding=True) is None


def test_migration_0005_downgrades_and_upgrades(connection):
    config = db._alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "0004")
    assert "closed_conversations" not in set(inspect(connection).get_table_names())
    command.upgrade(config, "head")
    assert "closed_conversations" in set(inspect(connection).get_table_names())


def test_migration_0004_downgrades_and_upgrades(connection):
    config = db._alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "0003")
    names = set(inspect(connection).get_table_names())
    assert not {"verifications", "verification_throttles"} & names and "tickets" in names
    command.upgrade(config, "head")
    assert {"verifications", "verification_throttles"} <= set(inspect(connection).get_table_names())
