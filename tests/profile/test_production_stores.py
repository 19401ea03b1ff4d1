"""The production profile, chosen by settings alone, on this machine's real
PostgreSQL and Redis: Rasa's tracker store on PostgreSQL (still masking the
verification digits), Rasa's RedisLockStore, and the WeChat channel's numbered
options in Redis. Without the settings, the embedded default."""
import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from rasa.core.lock_store import InMemoryLockStore, LockError, LockStore, RedisLockStore
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActiveLoop, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from benchmark.services import own_postgres
from benchmark.topology import postgres_schema
from tests.conftest import POSTGRES_URL, _postgres_problem, _postgres_reachable
from tuanjian import settings
from tuanjian.rasa_server import lock_store
from tuanjian.rasa_server.channels.guard import MessageRateLimit, SharedMessageRateLimit, message_rate_limit
from tuanjian.rasa_server.channels.wechat import OPTIONS_TTL, RedisTTLStore, TTLStore, option_store

REDIS_URL = "redis://127.0.0.1:6379/15"
TRACKER_ENDPOINT = EndpointConfig(type="tuanjian.rasa_server.tracker_store.RedactingSQLTrackerStore",
                                  dialect="sqlite", db="unused.db")
LOCK_ENDPOINT = EndpointConfig(type="tuanjian.rasa_server.lock_store.LockStoreFromSettings")


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({error}); .ci/run starts it")
    return REDIS_URL


@pytest.fixture
def tracker_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema of its own."""
    if not _postgres_reachable():
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {_postgres_problem[0]}")
    with postgres_schema("tracker") as url:
        yield url

def test_without_settings_the_embedded_default(monkeypatch, tmp_path):
    monkeypatch.delenv(settings.TRACKER_STORE_URL, raising=False)
    monkeypatch.delenv(settings.REDIS_URL, raising=False)
    endpoint = EndpointConfig(type=TRACKER_ENDPOINT.type, dialect="sqlite", db=str(tmp_path / "t.db"))
    store = TrackerStore.create(endpoint, Domain.empty())
    assert store.engine.dialect.name == "sqlite"
    assert isinstance(LockStore.create(LOCK_ENDPOINT), InMemoryLockStore)
    assert isinstance(option_store(), TTLStore)


def test_tracker_store_on_postgresql_masks_the_digits(monkeypatch, tracker_schema_url):
    monkeypatch.setenv(settings.TRACKER_STORE_URL, tracker_schema_url)
    store = TrackerStore.create(TRACKER_ENDPOINT, Domain.empty())
    assert store.engine.dialect.name == "postgresql"
    tracker = DialogueStateTracker.from_events("web:abc", [
        ActiveLoop("verification_form"),
        UserUttered("2019001 1234", {"name": "inform"}),
    ])
    asyncio.run(store.save(tracker))
    # A second store (another replica) reads what the first wrote.
    other = TrackerStore.create(TRACKER_ENDPOINT, Domain.empty())
    stored = asyncio.run(other.retrieve("web:abc"))
    texts = [e.text for e in stored.events if isinstance(e, UserUttered)]
    assert texts == ["2019001 ****"]
    store.engine.dispose()
    other.engine.dispose()


def test_replicas_alternating_on_postgresql_read_as_rasas_store(monkeypatch, tracker_schema_url):
    """Each turn's rows go in one INSERT .. RETURNING (a long save in parts); the
    ids keep the events' order, so either replica, and Rasa's own store, read
    the same conversation."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import ActionExecuted, BotUttered
    from sqlalchemy.engine import make_url

    from tuanjian.rasa_server import tracker_store

    monkeypatch.setenv(settings.TRACKER_STORE_URL, tracker_schema_url)
    monkeypatch.setattr(tracker_store, "INSERT_AT_ONCE", 5)
    first, second = (TrackerStore.create(TRACKER_ENDPOINT, Domain.empty()) for _ in range(2))

    def turn(number):
        return [ActionExecuted("action_listen"), UserUttered(f"第{number}条", {"name": "faq_forgot_password"}),
                ActionExecuted("utter_faq_forgot_password"), BotUttered(f"答{number}")]

    long_start = DialogueStateTracker.from_events("web:pg", [e for n in range(3) for e in turn(n)])
    asyncio.run(first.save(long_start))
    for number in range(3, 7):
        replica = first if number % 2 else second
        tracker = asyncio.run(replica.retrieve("web:pg"))
        for event in turn(number):
            tracker.update(event)
        asyncio.run(replica.save(tracker))
    # What the last writer keeps ends at its last row (a wrong id would make
    # every later turn read the conversation whole, which reads the same).
    with second.session_scope() as session:
        last = max(row.id for row in session.query(second.SQLEvent).filter_by(sender_id="web:pg"))
    assert second._recent["web:pg"].last_id == last
    url = make_url(tracker_schema_url)
    rasa = SQLTrackerStore(Domain.empty(), dialect=url.drivername, host=url.host, port=url.port,
                           db=url.database, username=url.username, password=url.password, query=dict(url.query))
    expected = [e.as_dict() for e in asyncio.run(rasa.retrieve("web:pg")).events]
    texts = [e["text"] for e in expected if e["event"] == "user"]
    assert texts == [f"第{n}条" for n in range(7)]
    for replica in (first, second):
        assert [e.as_dict() for e in asyncio.run(replica.retrieve("web:pg")).events] == expected
    for store in (first, second, rasa):
        store.engine.dispose()


def test_lock_store_on_redis_serialises_a_conversation_across_stores(monkeypatch, redis_url):
    monkeypatch.setenv(settings.REDIS_URL, redis_url)
    first, second = LockStore.create(LOCK_ENDPOINT), LockStore.create(LOCK_ENDPOINT)
    assert isinstance(first, RedisLockStore) and isinstance(second, RedisLockStore)
    conversation = f"web:{uuid.uuid4().hex}"
    # Two replicas' tickets for one conversation are served in the order issued.
    assert first.issue_ticket(conversation) == 0
    assert second.issue_ticket(conversation) == 1
    lock = first.get_lock(conversation)
    assert lock is not None and lock.now_serving == 0 and lock.is_someone_waiting() is not False
    first.finish_serving(conversation, 0)
    assert second.get_lock(conversation).now_serving == 1
    second.finish_serving(conversation, 1)


def test_wechat_options_live_in_redis(monkeypatch, redis_url):
    monkeypatch.setenv(settings.REDIS_URL, redis_url)
    store = option_store()
    assert isinstance(store, RedisTTLStore)
    openid = f"o{uuid.uuid4().hex}"
    store.set(openid, ["/faq_forgot_password", "/request_human"])
    # Another replica's store sees the options the member was shown.
    assert option_store().get(openid) == ["/faq_forgot_password", "/request_human"]
    assert 0 < store.client.ttl(f"{store.prefix}{openid}") <= OPTIONS_TTL
    store.pop(openid)
    assert store.get(openid) is None


def issue_from_threads(stores, conversation, per_thread=50):
    from concurrent.futures import ThreadPoolExecutor

    def issue(store):
        return [store.issue_ticket(conversation) for _ in range(per_thread)]

    with ThreadPoolExecutor(len(stores)) as pool:
        return [t for tickets in pool.map(issue, stores) for t in tickets]


def test_tickets_issued_at_once_by_several_replicas_are_all_kept(monkeypatch, redis_url):
    # Rasa's RedisLockStore reads, changes and writes the lock: tickets issued at
    # the same moment by two replicas overwrite each other and one is lost, and
    # that conversation then stalls until the lost ticket expires.
    monkeypatch.setenv(settings.REDIS_URL, redis_url)
    stores = [LockStore.create(LOCK_ENDPOINT) for _ in range(4)]
    conversation = f"web:{uuid.uuid4().hex}"
    tickets = issue_from_threads(stores, conversation)
    assert sorted(tickets) == list(range(200))
    assert len(stores[0].get_lock(conversation).tickets) == 200
    for ticket in tickets:
        stores[ticket % 4].cleanup(conversation, ticket)
    assert stores[0].get_lock(conversation) is None


async def _turn_after(store: LockStore, conversation: str, lifetime: float = 60) -> float:
    """Seconds this message waited for the conversation's earlier turn."""
    started = asyncio.get_running_loop().time()
    async with store.lock(conversation, lock_lifetime=lifetime):
        return asyncio.get_running_loop().time() - started


def test_a_turn_held_by_a_dead_replica_is_refused_after_the_stall(monkeypatch, redis_url):
    # A replica killed in the middle of a turn leaves its ticket until it
    # expires (TICKET_LOCK_LIFETIME, 60 s by default): the next message of that
    # conversation is refused with LockError (a 503 the page retries) within
    # the stall time instead of hanging, and its own ticket is taken back.
    monkeypatch.setenv(settings.REDIS_URL, redis_url)
    dead, alive = LockStore.create(LOCK_ENDPOINT), LockStore.create(LOCK_ENDPOINT)
    conversation = f"web:{uuid.uuid4().hex}"
    dead.issue_ticket(conversation, lock_lifetime=60)
    started = time.monotonic()
    with pytest.raises(LockError):
        asyncio.run(_turn_after(alive, conversation))
    assert lock_store.STALL_SECONDS <= time.monotonic() - started < lock_store.STALL_SECONDS + 1.5
    assert [t.number for t in alive.get_lock(conversation).tickets] == [0]
    dead.cleanup(conversation, 0)


def test_once_the_dead_ticket_expires_the_conversation_goes_on(monkeypatch, redis_url):
    monkeypatch.setenv(settings.REDIS_URL, redis_url)
    dead, alive = LockStore.create(LOCK_ENDPOINT), LockStore.create(LOCK_ENDPOINT)
    conversation = f"web:{uuid.uuid4().hex}"
    dead.issue_ticket(conversation, lock_lifetime=1)
    assert 0.5 < asyncio.run(_turn_after(alive, conversation)) < lock_store.STALL_SECONDS
    assert alive.get_lock(conversation) is None


def test_a_queue_that_moves_keeps_its_order_past_the_stall_and_the_lifetime(monkeypatch, redis_url):
    # Ten turns of 0.5 s each ahead of the last message: it waits about 5 s,
    # longer than the stall time (the turn being served keeps changing) and
    # five times its tickets' lifetime (a waiting ticket is renewed each time
    # it looks), and the turns run in the order their messages came.
    monkeypatch.setenv(settings.REDIS_URL, redis_url)
    stores = [LockStore.create(LOCK_ENDPOINT) for _ in range(2)]
    conversation = f"web:{uuid.uuid4().hex}"
    order = []

    async def slow_turn(store: LockStore, number: int) -> None:
        async with store.lock(conversation, lock_lifetime=1):
            order.append(number)
            await asyncio.sleep(0.5)

    async def burst() -> float:
        earlier = []
        for i in range(10):
            earlier.append(asyncio.ensure_future(slow_turn(stores[i % 2], i)))
            await asyncio.sleep(0.01)
        last = await _turn_after(stores[0], conversation, lifetime=1)
        await asyncio.gather(*earlier)
        return last

    assert asyncio.run(burst()) > lock_store.STALL_SECONDS
    assert order == list(range(10))


def test_the_tracker_store_survives_a_database_restart(monkeypatch):
    # Rasa's engine hands out its pooled connections unchecked: after a restart
    # of PostgreSQL the first turn on each would fail. Ours pings them first.
    with own_postgres() as server, postgres_schema("tracker", server.url) as url:
        monkeypatch.setenv(settings.TRACKER_STORE_URL, url)
        store = TrackerStore.create(TRACKER_ENDPOINT, Domain.empty())
        asyncio.run(store.save(DialogueStateTracker.from_events("web:pg", [UserUttered("你好")])))
        server.restart()
        stored = asyncio.run(store.retrieve("web:pg"))
        assert [e.text for e in stored.events if isinstance(e, UserUttered)] == ["你好"]
        store.engine.dispose()


def test_a_slow_turn_keeps_its_conversation_past_its_lifetime(monkeypatch, redis_url):
    # A turn of 2.5 s with tickets of 1 s: the turn's ticket is renewed while
    # it runs, so the next message of the conversation waits for it to end
    # instead of entering once the ticket would have expired.
    monkeypatch.setenv(settings.REDIS_URL, redis_url)
    first, second = LockStore.create(LOCK_ENDPOINT), LockStore.create(LOCK_ENDPOINT)
    conversation = f"web:{uuid.uuid4().hex}"
    events = []

    async def slow_turn() -> None:
        async with first.lock(conversation, lock_lifetime=1):
            events.append("slow starts")
            await asyncio.sleep(2.5)
            events.append("slow ends")

    async def next_turn() -> None:
        await asyncio.sleep(0.1)
        async with second.lock(conversation, lock_lifetime=1):
            events.append("next starts")

    async def both() -> None:
        await asyncio.gather(slow_turn(), next_turn())

    asyncio.run(both())
    assert events == ["slow starts", "slow ends", "next starts"]


def test_the_message_limit_is_shared_by_the_replicas(monkeypatch, redis_url):
    # A conversation spread over two replicas gets the limit once, not twice.
    monkeypatch.setenv(settings.REDIS_URL, redis_url)
    now = [1000.0]
    replicas = [message_rate_limit(3, "test") for _ in range(2)]
    for replica in replicas:
        replica.clock = lambda: now[0]
    key = f"rest:{uuid.uuid4().hex}"
    assert [replicas[i % 2].allow(key) for i in range(5)] == [True, True, True, False, False]
    now[0] += 61  # the window has passed
    assert replicas[1].allow(key)


def test_without_redis_the_limit_is_the_processes_and_redis_away_lets_through(monkeypatch):
    monkeypatch.delenv(settings.REDIS_URL, raising=False)
    assert isinstance(message_rate_limit(3, "test"), MessageRateLimit)
    away = SharedMessageRateLimit(1, "redis://127.0.0.1:1/0", "test")
    assert away.allow("rest:a")
    assert away._paused_until > time.monotonic()  # Redis is not asked again for a while
    assert away.allow("rest:a")
