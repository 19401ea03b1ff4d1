"""The production profile, chosen by settings alone, on this machine's real
PostgreSQL and Redis: Rasa's tracker store on PostgreSQL (still masking the
verification digits), Rasa's RedisLockStore, and the WeChat channel's numbered
options in Redis. Without the settings, the embedded default."""
import asyncio
import uuid
from collections.abc import Iterator

import pytest
import redis
from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActiveLoop, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from benchmark.topology import postgres_schema
from tests.conftest import POSTGRES_URL, _postgres_problem, _postgres_reachable
from tuanjian import settings
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
