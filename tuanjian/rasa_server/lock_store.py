"""The lock store, chosen by settings: Rasa's RedisLockStore, made atomic,
when TUANJIAN_REDIS_URL is set (any replica can then take any conversation's
turn in order), Rasa's in-memory one otherwise (one process, the embedded
default).

endpoints.yml names LockStoreFromSettings; Rasa builds a custom lock store by
calling it with the endpoint's config, so __new__ hands back the store.
"""
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockError, LockStore, RedisLockStore
from redis.connection import parse_url

from tuanjian import settings

KEY_PREFIX = "tuanjian"
# Rasa looks again every second for a waiting message's turn; with several
# messages of one conversation queued (a burst, WeChat's retries) that second
# is added to each. A Redis GET every 50 ms per waiting message is cheap.
WAIT_SECONDS = 0.05

T = TypeVar("T")


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's RedisLockStore with every change of a conversation's ticket lock
    made atomically (WATCH / MULTI, retried on a conflict).

    Rasa's own store reads the lock, changes it and writes it back: two
    replicas issuing tickets for one conversation at the same moment can both
    write, and a ticket is lost, so every later message of that conversation
    waits until the lost one expires (60 s; seen with a burst through two
    replicas). It also polls for a waiting turn every WAIT_SECONDS, not every
    second.
    """

    def lock(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME,
             wait_time_in_seconds: float = WAIT_SECONDS) -> AbstractAsyncContextManager[TicketLock]:
        lock: AbstractAsyncContextManager[TicketLock] = super().lock(
            conversation_id, lock_lifetime, wait_time_in_seconds)
        return lock

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

    def update_lock(self, conversation_id: str) -> None:
        self._change(conversation_id, lambda lock: lock.remove_expired_tickets(), create=False)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number), create=False)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number), create=False,
                     delete_when_idle=True)


class LockStoreFromSettings:
    def __new__(cls, endpoint_config: Any = None) -> LockStore:
        url = settings.redis_url()
        if not url:
            return InMemoryLockStore()
        parts = parse_url(url)
        return AtomicRedisLockStore(host=parts.get("host", "localhost"), port=parts.get("port", 6379),
                              db=parts.get("db", 0), password=parts.get("password"),
                              use_ssl=url.startswith("rediss://"), key_prefix=KEY_PREFIX)
