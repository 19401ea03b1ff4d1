"""One WeChat message, one turn: WeChat sends a message again when no reply
came within 5 seconds (up to three times, same MsgId), and every copy must get
the first one's passive reply rather than a turn of its own.

The first copy claims the message and runs the turn; a copy that finds it
claimed waits for the claim's reply. In one process the claim is a future
(LocalReplies); across replicas it is a Redis key (RedisReplies), so a retry
that the proxy sends to another replica is still not a second turn.
"""
import asyncio
import logging
import time

from redis.exceptions import RedisError

from tuanjian import settings

logger = logging.getLogger(__name__)
SEEN_TTL = 60.0  # longer than WeChat's 15 s of retries
PENDING = ""  # a claimed message whose reply is not known yet
POLL_SECONDS = 0.05


class LocalReplies:
    """Claims in this process: the first copy's future, which later copies await."""

    def __init__(self, ttl: float = SEEN_TTL) -> None:
        self.ttl = ttl
        self._futures: dict[str, tuple[float, asyncio.Future[str]]] = {}

    async def claim(self, key: str) -> bool:
        now = time.monotonic()
        self._futures = {k: v for k, v in self._futures.items() if v[0] > now}
        if key in self._futures:
            return False
        self._futures[key] = (now + self.ttl, asyncio.get_running_loop().create_future())
        return True

    async def resolve(self, key: str, reply: str) -> None:
        entry = self._futures.get(key)
        if entry is not None and not entry[1].done():
            entry[1].set_result(reply)

    async def wait(self, key: str, timeout: float) -> str | None:
        entry = self._futures.get(key)
        if entry is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(entry[1]), timeout)
        except asyncio.TimeoutError:
            return None


class RedisReplies:
    """Claims in Redis (SET NX), shared by every replica; a waiting copy polls
    the key until the claiming replica stores the reply."""

    def __init__(self, url: str, ttl: float = SEEN_TTL, prefix: str = "tuanjian:wechat-reply:") -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(url, socket_timeout=2)
        self.ttl = int(ttl)
        self.prefix = prefix

    async def claim(self, key: str) -> bool:
        try:
            return bool(await self.client.set(self.prefix + key, PENDING, nx=True, ex=self.ttl))
        except RedisError:
            # Redis away: answer it here; a retry on another replica may then run twice.
            logger.warning("WeChat message %s claimed without Redis", key, exc_info=True)
            return True

    async def resolve(self, key: str, reply: str) -> None:
        await self.client.set(self.prefix + key, reply, xx=True, ex=self.ttl)

    async def wait(self, key: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = await self.client.get(self.prefix + key)
            except RedisError:
                return None
            if value is None:
                return None
            if value.decode("utf-8") != PENDING:
                return str(value.decode("utf-8"))
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(POLL_SECONDS)


def reply_claims() -> LocalReplies | RedisReplies:
    """Redis in the production profile (TUANJIAN_REDIS_URL), this process otherwise."""
    url = settings.redis_url()
    return RedisReplies(url) if url else LocalReplies()
