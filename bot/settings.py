"""Settings that come from the environment, read in one place.

Secrets are never in a file of the repository: scripts/run.sh generates the
three the embedded default needs (ACTION_SERVER_TOKEN, WEB_SESSION_SECRET,
TUANJIAN_THROTTLE_KEY) when they are not set, and a deployment sets them
(README, "Security").
"""
import ipaddress
import os
from typing import List, Optional, Union

# Shared by the Rasa server (endpoints.yml sends it) and the action server (checks it).
ACTION_SERVER_TOKEN = "ACTION_SERVER_TOKEN"
# Signs the web chat page's session ids.
WEB_SESSION_SECRET = "WEB_SESSION_SECRET"
# Keys the digests the verification throttle counts member numbers by.
THROTTLE_KEY = "TUANJIAN_THROTTLE_KEY"
# Where the action server listens: 127.0.0.1, or e.g. 0.0.0.0 inside a container network.
ACTIONS_HOST = "TUANJIAN_ACTIONS_HOST"
# Addresses (or networks) of the reverse proxies whose X-Forwarded-For is believed.
TRUSTED_PROXIES = "TUANJIAN_TRUSTED_PROXIES"
# Messages one conversation may send per minute; 0 turns the limit off.
MESSAGES_PER_MINUTE = "TUANJIAN_MESSAGES_PER_MINUTE"

DEFAULT_ACTIONS_HOST = "127.0.0.1"
DEFAULT_MESSAGES_PER_MINUTE = 30

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def secret(name: str) -> Optional[str]:
    value = os.environ.get(name, "").strip()
    return value or None


def actions_host() -> str:
    return os.environ.get(ACTIONS_HOST, "").strip() or DEFAULT_ACTIONS_HOST


def trusted_proxies() -> List[Network]:
    """The trusted proxies; a malformed entry is an error, not silently dropped."""
    entries = os.environ.get(TRUSTED_PROXIES, "").replace(",", " ").split()
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def messages_per_minute() -> int:
    raw = os.environ.get(MESSAGES_PER_MINUTE, "").strip()
    value = int(raw) if raw else DEFAULT_MESSAGES_PER_MINUTE
    if value < 0:
        raise ValueError(f"{MESSAGES_PER_MINUTE} must be 0 (off) or a positive number")
    return value
