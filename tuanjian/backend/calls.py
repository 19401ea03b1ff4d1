"""Calling the blocking backend from a server's event loop, within a time budget."""
import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from tuanjian import settings

# What a backend call may fail with when the database is away or slow.
BACKEND_ERRORS = (asyncio.TimeoutError, SQLAlchemyError, OSError)


async def call_in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` in the loop's thread pool; raises asyncio.TimeoutError
    after settings.BACKEND_TIMEOUT seconds."""
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.run_in_executor(None, fn, *args), settings.BACKEND_TIMEOUT)
