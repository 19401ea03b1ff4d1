"""Session ids for the web chat page, issued and signed by the server.

A token is "<id>.<issued at>.<signature>": the id names the conversation
(web:<id>), the HMAC-SHA256 signature under WEB_SESSION_SECRET proves the
server issued it, so a client cannot pick a conversation it was not given.
Tokens are refused after MAX_AGE. The chat page keeps its token for the tab's
session; the staff inbox takes the same token.
"""
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable

from tuanjian.backend.calls import BACKEND_ERRORS, call_in_thread
from tuanjian.backend.verification import VerificationService

logger = logging.getLogger(__name__)
WEB_CHANNEL = "web"  # the web channel's name, the first part of its conversation ids

MAX_AGE = 24 * 3600.0
HEADER = "X-Chat-Session"
_TOKEN = re.compile(r"^([0-9a-f]{32})\.([0-9]{1,12})\.([0-9a-f]{64})$")


class WebSessions:
    def __init__(self, secret: str, clock: Callable[[], float] = time.time,
                 max_age: float = MAX_AGE) -> None:
        if not secret:
            raise ValueError("a web session secret is needed")
        self._key = secret.encode("utf-8")
        self.clock = clock
        self.max_age = max_age

    def _sign(self, session_id: str, issued: int) -> str:
        return hmac.new(self._key, f"web-session:{session_id}.{issued}".encode(), hashlib.sha256).hexdigest()

    def issue(self) -> str:
        session_id, issued = secrets.token_hex(16), int(self.clock())
        return f"{session_id}.{issued}.{self._sign(session_id, issued)}"

    def session_id(self, token: object) -> str | None:
        """The id of a token this server issued and that has not expired; None otherwise."""
        match = _TOKEN.match(token) if isinstance(token, str) else None
        if match is None:
            return None
        session_id, issued, signature = match.group(1), int(match.group(2)), match.group(3)
        if not hmac.compare_digest(signature, self._sign(session_id, issued)):
            return None
        age = self.clock() - issued
        return session_id if -60 <= age <= self.max_age else None


async def open_session_id(sessions: WebSessions, verifications: VerificationService,
                          token: object, unchecked_ok: bool = True) -> str | None:
    """The session id of a token this server signed, that has not expired and
    whose conversation was not closed by "重新开始"; None otherwise.

    Should the backend not answer within BACKEND_TIMEOUT, `unchecked_ok` decides:
    the chat goes on (its conversation is unverified then anyway, since
    verifying needs the backend), the staff inbox does not."""
    session_id = sessions.session_id(token)
    if session_id is None:
        return None
    try:
        closed = await call_in_thread(verifications.is_closed, WEB_CHANNEL, session_id)
    except BACKEND_ERRORS as error:
        logger.warning("web session %s: closure not checked, backend unavailable: %r", session_id, error)
        closed = not unchecked_ok
    return None if closed else session_id
