"""The lock store, chosen by settings: Rasa's RedisLockStore when
TUANJIAN_REDIS_URL is set (any replica can then take any conversation's turn
in order), Rasa's in-memory one otherwise (one process, the embedded default).

endpoints.yml names this class; Rasa builds a custom lock store by calling it
with the endpoint's config, so __new__ hands back one of Rasa's own stores.
"""
from typing import Any

from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from redis.connection import parse_url

from tuanjian import settings

KEY_PREFIX = "tuanjian"


class LockStoreFromSettings:
    def __new__(cls, endpoint_config: Any = None) -> LockStore:
        url = settings.redis_url()
        if not url:
            return InMemoryLockStore()
        parts = parse_url(url)
        return RedisLockStore(host=parts.get("host", "localhost"), port=parts.get("port", 6379),
                              db=parts.get("db", 0), password=parts.get("password"),
                              use_ssl=url.startswith("rediss://"), key_prefix=KEY_PREFIX)
