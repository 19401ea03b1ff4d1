"""Who a conversation may see: verifications, their throttle, and channel bindings.

A member proves who they are with their member number and the last four
digits of their phone. The proof is a `Verification` row of that
conversation (channel + the channel's own user id), valid in the Rasa session
it was made in and until it has been idle for `IDLE_TIMEOUT` (counted from
the last read that wrote, at most `TOUCHED_WITHIN` before the last read).
Failed attempts are counted per member number (whether it exists or not) and
per client; too many lock further attempts for every conversation and
channel, and a locked attempt is refused without looking at the digits and
without writing anything.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tuanjian import settings
from tuanjian.backend import rules
from tuanjian.backend.db import TransactionalService, insert_missing, upsert
from tuanjian.backend.models import (
    ChannelBinding,
    ClosedConversation,
    Member,
    Verification,
    VerificationThrottle,
)
from tuanjian.backend.rules import DomainError

IDLE_TIMEOUT = timedelta(minutes=30)
# A read within this time of the last one does not write: most turns of a
# verified member read it, and a row lock and a write a turn cost the database
# more than all the turn's other queries. The idle time may so end this much early.
TOUCHED_WITHIN = timedelta(minutes=1)
# A closed conversation is remembered longer than any token naming it stays valid (24 h).
CLOSED_KEPT = timedelta(hours=25)
MAX_KEY_CHARS = 128


@dataclass(frozen=True)
class Limit:
    failures: int  # this many failures within `window` of the first one ...
    window: timedelta
    lock: timedelta  # ... lock for this long from the last one


# Per member number: FAQ-independent security policy (issue 14). Per client
# (an address, or a WeChat OpenID): looser, since a campus or a company may
# share one address.
LIMITS = {
    "member": Limit(failures=5, window=timedelta(minutes=15), lock=timedelta(minutes=15)),
    "client": Limit(failures=20, window=timedelta(minutes=15), lock=timedelta(minutes=15)),
}


@dataclass(frozen=True)
class Conversation:
    channel: str
    external_id: str  # the channel's user id: an OpenID, a web session id, a REST sender
    session_key: str  # marks the Rasa session; a new session or a restart changes it


@dataclass(frozen=True)
class Attempt:
    outcome: str  # "verified", "failed" or "locked"
    member_no: str | None = None
    masked_name: str | None = None
    locked_minutes: int = 0


@dataclass(frozen=True)
class ThrottleState:
    failures: int
    window_started_at: datetime
    locked_until: datetime | None


def minutes_locked(locked_until: datetime | None, now: datetime) -> int:
    """Whole minutes (rounded up) until the lock ends; 0 when not locked."""
    if locked_until is None or locked_until <= now:
        return 0
    return math.ceil((locked_until - now).total_seconds() / 60)


def after_failure(state: ThrottleState | None, now: datetime, limit: Limit) -> ThrottleState:
    """The throttle after one more failure (not called while locked)."""
    if state is None or now - state.window_started_at >= limit.window \
            or (state.locked_until is not None and state.locked_until <= now):
        state = ThrottleState(0, now, None)
    failures = state.failures + 1
    if failures >= limit.failures:
        return ThrottleState(0, now, now + limit.lock)
    return ThrottleState(failures, state.window_started_at, None)


class VerificationService(TransactionalService):
    def __init__(self, sessions: Callable[[], Session] | None = None,
                 clock: Callable[[], datetime] = rules.utcnow, throttle_key: str | None = None) -> None:
        super().__init__(sessions, clock)
        self.throttle_key = throttle_key  # else settings.THROTTLE_KEY, read when first needed

    def attempt(self, conversation: Conversation, member_no: str, last4: str,
                client: str | None = None, bind: bool = False) -> Attempt:
        """Check number and digits for this conversation, counting and locking failures.

        Wrong number and wrong digits are one outcome. On success the
        conversation is verified (and, with `bind`, its channel id bound to the
        member for later visits). A locked attempt leaves the database as it was."""
        _check_conversation(conversation)
        if not (isinstance(member_no, str) and 0 < len(member_no) <= 32 and isinstance(last4, str)):
            return Attempt("failed")
        now = self.clock()
        keys = {"member": self.member_key(member_no)}
        if client:
            keys["client"] = client_throttle_key(client)
        with self._transaction() as s:
            throttles, created = {}, []
            # The client first: a locked client spraying new numbers creates no row for them.
            for kind in ("client", "member"):
                if kind not in keys:
                    continue
                row, inserted = _throttle_row(s, keys[kind], now)
                throttles[kind] = row
                if inserted:
                    created.append(row)
                minutes = minutes_locked(row.locked_until, now)
                if minutes:
                    for empty in created:  # inserted by this transaction: take them back
                        s.delete(empty)
                    return Attempt("locked", locked_minutes=minutes)
            member = s.execute(select(Member).where(Member.member_no == member_no)).scalar_one_or_none()
            expected = member.phone_last4 if member is not None else "\0\0\0\0"
            if member is not None and hmac.compare_digest(expected.encode(), last4.encode()):
                # Reset, not delete: a concurrent attempt may be waiting for this row's lock.
                _reset(throttles["member"], now)
                for row in created:  # a concurrent insert of these waits, then inserts anew
                    s.delete(row)
                _verify(s, conversation, member, now)
                if bind:
                    _bind(s, conversation.channel, conversation.external_id, member, now)
                return Attempt("verified", member_no, rules.mask_name(member.name))
            locked = 0
            for kind, row in throttles.items():
                state = _record_failure(row, now, LIMITS[kind])
                locked = max(locked, minutes_locked(state.locked_until, now))
            return Attempt("locked", locked_minutes=locked) if locked else Attempt("failed")

    def member_key(self, member_no: str) -> str:
        """The throttle key of a member number: a keyed digest, so that whatever a
        member typed as their number (a phone or ID number by mistake) is not kept."""
        key = self.throttle_key or settings.secret(settings.THROTTLE_KEY)
        if not key:
            raise RuntimeError(f"{settings.THROTTLE_KEY} is not set")
        digest = hmac.new(key.encode("utf-8"), member_no.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"member:{digest[:40]}"

    def current(self, conversation: Conversation, use_binding: bool = False) -> str | None:
        """The member number this conversation is verified as now, or None.

        Reading keeps the verification alive (the idle time starts again from
        this read, or from one at most `TOUCHED_WITHIN` earlier). A
        verification of another session, or idle too long, is deleted. With
        `use_binding`, a channel id bound on an earlier visit verifies anew."""
        _check_conversation(conversation)
        now = self.clock()
        with self._transaction() as s:
            seen = s.execute(
                select(Verification.session_key, Verification.last_seen_at, Member.member_no)
                .join(Member, Verification.member_id == Member.id)
                .where(Verification.channel == conversation.channel,
                       Verification.external_id == conversation.external_id)).one_or_none()
            if seen is None and not use_binding:
                return None  # most conversations: nothing to lock, write or delete
            if seen is not None and seen.session_key == conversation.session_key \
                    and timedelta(0) <= now - seen.last_seen_at < TOUCHED_WITHIN:
                return cast("str", seen.member_no)
            row = _verification_row(s, conversation.channel, conversation.external_id)
            if row is not None and row.session_key == conversation.session_key \
                    and now - row.last_seen_at < IDLE_TIMEOUT:
                row.last_seen_at = now
                return cast("str | None", row.member.member_no)
            if row is not None:
                s.delete(row)
            if not use_binding:
                return None
            member = s.execute(
                select(Member).join(ChannelBinding, ChannelBinding.member_id == Member.id)
                .where(ChannelBinding.channel == conversation.channel,
                       ChannelBinding.external_id == conversation.external_id)
            ).scalar_one_or_none()
            if member is None:
                return None
            s.flush()
            _verify(s, conversation, member, now)
            return cast("str | None", member.member_no)

    def close(self, channel: str, external_id: str) -> None:
        """End the conversation for good: its verification is gone and its id takes
        no more messages (`is_closed`). Closures older than a web token's life are purged."""
        _check_binding_key(channel, external_id)
        now = self.clock()
        with self._transaction() as s:
            _forget_verification(s, channel, external_id)
            s.execute(delete(ClosedConversation).where(ClosedConversation.closed_at < now - CLOSED_KEPT))
            insert_missing(s, ClosedConversation, {"channel": channel, "external_id": external_id},
                           {"closed_at": now})

    def is_closed(self, channel: str, external_id: str) -> bool:
        with self._transaction() as s:
            return s.get(ClosedConversation, (channel, external_id)) is not None

    def end(self, channel: str, external_id: str) -> bool:
        """Forget the conversation's verification; False when there was none."""
        with self._transaction() as s:
            return _forget_verification(s, channel, external_id)

    # -- channel bindings (a WeChat OpenID stays verified across visits) -----

    def bind(self, channel: str, external_id: str, member_no: str) -> None:
        """Bind the channel's user id to the member, replacing an earlier binding."""
        _check_binding_key(channel, external_id)
        with self._transaction() as s:
            member = s.execute(select(Member).where(Member.member_no == member_no)).scalar_one_or_none()
            if member is None:
                raise DomainError("unknown_member", "no such member number")
            _bind(s, channel, external_id, member, self.clock())

    def unbind(self, channel: str, external_id: str) -> bool:
        """Remove the binding and the conversation's verification; False when there was no binding."""
        with self._transaction() as s:
            _forget_verification(s, channel, external_id)
            result = s.execute(delete(ChannelBinding).where(
                ChannelBinding.channel == channel, ChannelBinding.external_id == external_id))
            return cast("bool", result.rowcount > 0)

    def bound_member(self, channel: str, external_id: str) -> str | None:
        """The member number bound to the channel's user id, or None."""
        with self._transaction() as s:
            return cast("str | None", s.execute(
                select(Member.member_no).join(ChannelBinding, ChannelBinding.member_id == Member.id)
                .where(ChannelBinding.channel == channel, ChannelBinding.external_id == external_id)
            ).scalar_one_or_none())


def _check_binding_key(channel: str, external_id: str) -> None:
    if not (isinstance(channel, str) and 0 < len(channel) <= 32
            and isinstance(external_id, str) and 0 < len(external_id) <= MAX_KEY_CHARS):
        raise DomainError("bad_binding", "channel must be 1-32 and external id 1-128 characters")


def _check_conversation(conversation: Conversation) -> None:
    _check_binding_key(conversation.channel, conversation.external_id)
    if not (isinstance(conversation.session_key, str) and len(conversation.session_key) <= 64):
        raise DomainError("bad_session_key", "session key must be at most 64 characters")


def _verification_row(s: Session, channel: str, external_id: str) -> Verification | None:
    return cast("Verification | None", s.execute(select(Verification).where(
        Verification.channel == channel, Verification.external_id == external_id
    ).with_for_update()).scalar_one_or_none())


def _forget_verification(s: Session, channel: str, external_id: str) -> bool:
    """Delete the conversation's verification; False when there was none."""
    return cast("bool", s.execute(delete(Verification).where(
        Verification.channel == channel, Verification.external_id == external_id)).rowcount > 0)


def _verify(s: Session, conversation: Conversation, member: Member, now: datetime) -> None:
    upsert(s, Verification, {"channel": conversation.channel, "external_id": conversation.external_id},
           {"member_id": member.id, "session_key": conversation.session_key,
            "verified_at": now, "last_seen_at": now})


def _bind(s: Session, channel: str, external_id: str, member: Member, now: datetime) -> None:
    upsert(s, ChannelBinding, {"channel": channel, "external_id": external_id},
           {"member_id": member.id, "created_at": now})


def _throttle_row(s: Session, key: str, now: datetime) -> tuple[VerificationThrottle, bool]:
    """The key's row, locked for this transaction, and whether this call created it
    (created empty first, so that concurrent attempts on one key wait for each
    other instead of both counting from 0)."""
    inserted = insert_missing(s, VerificationThrottle, {"key": key},
                              {"failures": 0, "window_started_at": now, "locked_until": None})
    row = s.execute(select(VerificationThrottle).where(VerificationThrottle.key == key)
                    .with_for_update()).scalar_one()
    return row, inserted


def client_throttle_key(client: str) -> str:
    return f"client:{client[:MAX_KEY_CHARS]}"


def _reset(row: VerificationThrottle, now: datetime) -> None:
    row.failures, row.window_started_at, row.locked_until = 0, now, None


def _record_failure(row: VerificationThrottle, now: datetime, limit: Limit) -> ThrottleState:
    state = after_failure(ThrottleState(row.failures, row.window_started_at, row.locked_until), now, limit)
    row.failures, row.window_started_at, row.locked_until = \
        state.failures, state.window_started_at, state.locked_until
    return state
