"""The lock store, chosen by settings: Rasa's RedisLockStore, made atomic,
when TUANJIAN_REDIS_URL is set (any replica can then take any conversation's
turn in order), Rasa's in-memory one otherwise (one process, the embedded
default).

endpoints.yml names LockStoreFromSettings; Rasa builds a custom lock store by
calling it with the endpoint's config, so __new__ hands back the store.
"""
import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockError, LockStore, RedisLockStore
from redis.connection import parse_url
from redis.exceptions import RedisError

from tuanjian import settings

logger = logging.getLogger(__name__)
KEY_PREFIX = "tuanjian"
# Rasa looks again every second for a waiting message's turn; with several
# messages of one conversation queued (a burst, WeChat's retries) that second
# is added to each. A Redis GET every 50 ms per waiting message is cheap (a
# write only when its ticket is half way to expiring).
WAIT_SECONDS = 0.05
# A turn ahead of a waiting message that has not finished within this many
# seconds is taken for a replica that died holding the lock (or one stuck on a
# broken backend): the waiting message is refused with LockError, which the
# channels answer with a 503 the chat page retries, instead of leaving the
# member without a reply until the dead turn's ticket expires
# (TICKET_LOCK_LIFETIME, Rasa's setting). A queue that moves is waited for.
STALL_SECONDS = 3.0
# Redis's answer to one command; Rasa's default of 10 s would outlast the 3 s
# in which a member is promised a reply or a 503.
SOCKET_TIMEOUT_SECONDS = 2.0

T = TypeVar("T")


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's RedisLockStore with every change of a conversation's ticket lock
    made atomically (WATCH / MULTI, retried on a conflict).

    Rasa's own store reads the lock, changes it and writes it back: two
    replicas issuing tickets for one conversation at the same moment can both
    write, and a ticket is lost, so every later message of that conversation
    waits until the lost one expires (60 s; seen with a burst through two
    replicas). It also polls for a waiting turn every WAIT_SECONDS, not every
    second, and gives up on a queue that has not moved for STALL_SECONDS.

    A ticket's lifetime (Rasa's TICKET_LOCK_LIFETIME) is renewed while its
    message waits and while its turn runs: a long queue keeps its order and a
    slow turn keeps its conversation, while a replica that dies frees the
    conversation one lifetime after it stopped renewing. So the lifetime can
    be short (10 s in the topology and the manifests).
    """

    @asynccontextmanager
    async def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = WAIT_SECONDS) -> AsyncIterator[TicketLock]:
        ticket = self.issue_ticket(conversation_id, lock_lifetime)
        try:
            lock = await self._wait_for_turn(conversation_id, ticket, lock_lifetime, wait_time_in_seconds)
            keeper = asyncio.ensure_future(self._keep(conversation_id, ticket, lock_lifetime))
            try:
                yield lock
            finally:
                keeper.cancel()
        finally:
            self.cleanup(conversation_id, ticket)

    async def _wait_for_turn(self, conversation_id: str, ticket: int, lifetime: float,
                             wait_seconds: float) -> TicketLock:
        serving, since = None, time.monotonic()
        while True:
            lock = self.get_lock(conversation_id)
            own = _ticket(lock, ticket)
            if own is not None and own.expires - time.time() < lifetime / 2:
                lock = self._renew(conversation_id, ticket, lifetime)
                own = _ticket(lock, ticket)
            if lock is None or own is None or own.has_expired():
                raise LockError(f"ticket {ticket} of '{conversation_id}' expired while waiting")
            if not lock.is_locked(ticket):
                return lock
            if lock.now_serving != serving:
                serving, since = lock.now_serving, time.monotonic()
            elif time.monotonic() - since > STALL_SECONDS:
                raise LockError(f"turn {serving} of '{conversation_id}' has not finished "
                                f"in {STALL_SECONDS:.0f} s")
            await asyncio.sleep(wait_seconds)

    async def _keep(self, conversation_id: str, ticket: int, lifetime: float) -> None:
        """Renew the serving ticket every third of its lifetime while its turn runs."""
        while True:
            await asyncio.sleep(lifetime / 3)
            try:
                self._renew(conversation_id, ticket, lifetime)
            except RedisError:
                logger.warning("ticket %s of %s not renewed: Redis unavailable", ticket, conversation_id)

    def _renew(self, conversation_id: str, ticket: int, lifetime: float) -> TicketLock | None:
        return self._change(conversation_id, lambda lock: _renewed(lock, ticket, lifetime), create=False)

    def _change(self, conversation_id: str, change: Callable[[TicketLock], T],
                create: bool = True, delete_when_idle: bool = False) -> T | None:
        key = self.key_prefix + conversation_id
        outcome: list[T | None] = [None]

        def apply(pipe: Any) -> None:
            raw = pipe.get(key)
            if raw is None and not create:
                pipe.multi()
                return
            lock = TicketLock.from_dict(json.loads(raw)) if raw else TicketLock(conversation_id)
            outcome[0] = change(lock)
            pipe.multi()
            if delete_when_idle and not lock.is_someone_waiting():
                pipe.delete(key)
            else:
                pipe.set(key, lock.dumps())

        self.red.transaction(apply, key)
        return outcome[0]

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            ticket = self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime))
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        return int(ticket or 0)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number), create=False)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number), create=False,
                     delete_when_idle=True)


def _ticket(lock: TicketLock | None, number: int) -> Ticket | None:
    return next((t for t in lock.tickets if t.number == number), None) if lock else None


def _renewed(lock: TicketLock, ticket: int, lifetime: float) -> TicketLock | None:
    """The lock with expired tickets dropped and `ticket` given its full
    lifetime from now; None if `ticket` has expired."""
    lock.remove_expired_tickets()
    own = _ticket(lock, ticket)
    if own is None:
        return None
    own.expires = time.time() + lifetime
    return lock


class LockStoreFromSettings:
    def __new__(cls, endpoint_config: Any = None) -> LockStore:
        url = settings.redis_url()
        if not url:
            return InMemoryLockStore()
        parts = parse_url(url)
        return AtomicRedisLockStore(host=parts.get("host", "localhost"), port=parts.get("port", 6379),
                                    db=parts.get("db", 0), password=parts.get("password"),
                                    use_ssl=url.startswith("rediss://"), key_prefix=KEY_PREFIX,
                                    socket_timeout=SOCKET_TIMEOUT_SECONDS)
