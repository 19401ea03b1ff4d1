"""Waiting for a server to come up: one loop for the run script, the report's
demo and the test harness."""
import time
import urllib.error
import urllib.request
from collections.abc import Callable


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    """True as soon as check() holds; False once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def answers_ok(url: str) -> bool:
    """Whether a GET of the URL answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False
