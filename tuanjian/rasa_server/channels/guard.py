"""What every channel checks before a message becomes a turn: who the client
is (behind a trusted proxy only) and how fast one conversation may write."""
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import lru_cache

from rasa.shared.core.domain import Domain
from redis.exceptions import RedisError
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from tuanjian import settings

logger = logging.getLogger(__name__)
RATE_LIMITED_RESPONSE = "utter_rate_limited"
SERVICE_BUSY_RESPONSE = "utter_service_busy"
SERVICE_UNAVAILABLE_RESPONSE = "utter_service_unavailable"
# "1.2.3.4:5678" or "[2001:db8::1]:5678", as some proxies forward them.
_WITH_PORT = re.compile(r"^(?:([0-9.]+)|\[([0-9a-fA-F:.]+)\]):[0-9]{1,5}$")
WINDOW_SECONDS = 60.0
JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def json_error(status: int, error: str, reason: str | None = None) -> HTTPResponse:
    """A refusal every channel answers alike: {"error": ..., "reason": ...}."""
    body = {"error": error} if reason is None else {"error": error, "reason": reason}
    return response.json(body, status=status, headers=JSON_HEADERS)


def client_address(request: Request, trusted: Sequence[settings.Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then
    the right-most address of X-Forwarded-For that is not a trusted proxy."""
    address = request.ip or ""
    hops = [h.strip() for h in (request.headers.get("X-Forwarded-For") or "").split(",") if h.strip()]
    while _is_trusted(address, trusted) and hops:
        address = hops.pop()
    return address


def _is_trusted(address: str, trusted: Sequence[settings.Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_key(address: str) -> str:
    """What the backend counts failed verifications by: a keyed digest (under
    TUANJIAN_THROTTLE_KEY), not the address itself, which a plain hash of the
    small IPv4 space would give away.

    An IPv6 client is counted by its /64, the block one subscriber is given and
    can rotate through at will; an IPv4-mapped address counts as the IPv4 one; a
    port is dropped; whatever does not parse as an address is one client."""
    ip = _parse_address(address)
    counted: ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv6Network | None = ip
    if isinstance(ip, ipaddress.IPv6Address):
        counted = ip.ipv4_mapped or ipaddress.IPv6Network((int(ip) >> 64 << 64, 64))
    canonical = str(counted) if counted is not None else "unparsed"
    return "ip-" + hmac.new(_key_secret(), canonical.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def _parse_address(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    match = _WITH_PORT.match(address)
    try:
        return ipaddress.ip_address(match.group(1) or match.group(2) if match else address)
    except ValueError:
        return None


@lru_cache(maxsize=1)
def _key_secret() -> bytes:
    key = settings.secret(settings.THROTTLE_KEY)
    if key:
        return key.encode("utf-8")
    logger.warning("%s is not set: client keys are keyed for this process only", settings.THROTTLE_KEY)
    return secrets.token_bytes(32)


def is_json(request: Request) -> bool:
    """Whether the body is declared JSON. A cross-origin page can send text/plain
    without asking the browser's CORS preflight, but not application/json."""
    content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type == "application/json"


class MessageRateLimit:
    """At most `per_minute` messages per key in any 60 seconds; 0 means no limit.
    Kept in this process (one limit per Rasa server)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._next_sweep = 0.0

    def allow(self, key: str) -> bool:
        if not self.per_minute:
            return True
        now = self.clock()
        self._sweep(now)
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - WINDOW_SECONDS:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        return True

    def _sweep(self, now: float) -> None:
        """Forget keys that sent nothing for a minute, so memory follows active senders."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + WINDOW_SECONDS
        for key in [k for k, t in self._seen.items() if not t or t[-1] <= now - WINDOW_SECONDS]:
            del self._seen[key]


# The window of MessageRateLimit, kept in a sorted set per key: drop what is
# older than the window, refuse at the limit, else record this message. One
# script, so that replicas counting the same key at once cannot both slip in.
_SHARED_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2]))
return 1
"""


class SharedMessageRateLimit:
    """MessageRateLimit counted in Redis, so that replicas share it: with a
    limit per process, a conversation spread by the proxy over N replicas
    could send N times the limit (seen in the load test: 40 messages a minute
    through two replicas, not one refused). Redis away: allowed (the turn then
    needs Redis anyway and is refused with a 503), and Redis is not asked
    again for PAUSE_SECONDS, so an outage does not hold every message for the
    client's timeout."""

    TIMEOUT_SECONDS = 0.5
    PAUSE_SECONDS = 5.0

    def __init__(self, per_minute: int, url: str, name: str,
                 clock: Callable[[], float] = time.time) -> None:
        import redis

        self.per_minute = per_minute
        self.prefix = f"tuanjian:rate:{name}:"
        self.clock = clock
        self._window = redis.Redis.from_url(
            url, socket_timeout=self.TIMEOUT_SECONDS,
            socket_connect_timeout=self.TIMEOUT_SECONDS).register_script(_SHARED_WINDOW)
        self._paused_until = 0.0

    def allow(self, key: str) -> bool:
        if not self.per_minute or time.monotonic() < self._paused_until:
            return True
        now = self.clock()
        try:
            return bool(self._window(keys=[self.prefix + key],
                                     args=[now, WINDOW_SECONDS, self.per_minute, f"{now}:{secrets.token_hex(4)}"]))
        except RedisError:
            self._paused_until = time.monotonic() + self.PAUSE_SECONDS
            logger.warning("rate limits not counted for %.0f s: Redis unavailable", self.PAUSE_SECONDS)
            return True


def message_rate_limit(per_minute: int, name: str) -> MessageRateLimit | SharedMessageRateLimit:
    """The limit a channel counts `name` messages by: shared by the replicas
    in the production profile (TUANJIAN_REDIS_URL), in this process otherwise."""
    url = settings.redis_url()
    return SharedMessageRateLimit(per_minute, url, name) if url else MessageRateLimit(per_minute)


def domain_text(domain: Domain | None, response: str) -> str | None:
    variants = (domain.responses.get(response) if domain else None) or [{}]
    return variants[0].get("text") or None


def rate_limited_reply(domain: Domain | None, recipient: str) -> list[dict[str, str]]:
    """What a REST-style channel answers when the limit refuses a message."""
    return [{"recipient_id": recipient, "text": domain_text(domain, RATE_LIMITED_RESPONSE) or ""}]
