"""The web chat page: GET /webhooks/web/ and its assets, served by the Rasa server.

The page (bot/channels/web_static/) talks to the assistant through the REST
channel on the same origin (POST /webhooks/rest/webhook), so this channel has
no POST route of its own and never sees a message. It only serves the files of
web_static: the set of servable files is read from that folder when the
blueprint is built and a request names one of them by its bare file name, so
no path can reach anything outside it.

Enable it in credentials.yml next to the REST channel:

    bot.channels.rest.RestInput:
    bot.channels.web.WebChatInput:

Run as a module, it waits for a Rasa server, prints the page's address and
optionally opens a chat in the terminal over REST (scripts/run.sh):

    python -m bot.channels.web --server http://localhost:5005 [--chat]
"""
import argparse
import asyncio
import sys
import time
import uuid
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

STATIC_DIR = Path(__file__).resolve().parent / "web_static"
PAGE = "index.html"
PATH = "/webhooks/web/"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# Everything from this origin only: no inline script or style, no CDN, no
# external font, and the page cannot be framed by another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Small files: revalidate so an updated page is picked up at once.
    "Cache-Control": "no-cache",
}


def servable_files(folder: Path = STATIC_DIR) -> Dict[Text, Path]:
    """The files the channel may serve: regular files of the folder itself
    (no subfolders, no hidden files) with a known content type."""
    return {
        path.name: path
        for path in sorted(folder.iterdir())
        if path.is_file()
        and not path.is_symlink()
        and not path.name.startswith(".")
        and path.suffix in CONTENT_TYPES
    }


def add_page_routes(blueprint: Blueprint, folder: Path) -> None:
    """GET / → folder/index.html and GET /static/<name> → a file of that folder."""
    files = servable_files(folder)
    if PAGE not in files:
        raise FileNotFoundError(f"the page is missing: {folder / PAGE}")

    def serve(name: Text) -> HTTPResponse:
        path = files.get(name)
        if path is None:
            return response.text("not found", status=404, headers=SECURITY_HEADERS)
        try:
            body = path.read_bytes()
        except OSError:
            return response.text("not found", status=404, headers=SECURITY_HEADERS)
        return response.raw(body, content_type=CONTENT_TYPES[path.suffix], headers=SECURITY_HEADERS)

    @blueprint.route("/", methods=["GET", "HEAD"])
    async def page(request: Request) -> HTTPResponse:
        return serve(PAGE)

    @blueprint.route("/static/<name>", methods=["GET", "HEAD"])
    async def asset(request: Request, name: Text) -> HTTPResponse:
        return serve(name)


class WebChatInput(InputChannel):
    """Serves the chat page at /webhooks/web/ and its assets at /webhooks/web/static/<file>."""

    @classmethod
    def name(cls) -> Text:
        return "web"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls()

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        web = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)
        add_page_routes(web, STATIC_DIR)
        return web


def page_url(server: Text) -> Text:
    return server.rstrip("/") + PATH


def wait_for_page(server: Text, timeout: float = 300.0) -> bool:
    """True once the server answers the page, False after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(page_url(server), timeout=5) as reply:
                if reply.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    return False


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://localhost:5005")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--chat", action="store_true", help="then chat in this terminal over REST")
    args = parser.parse_args(argv)
    if not wait_for_page(args.server, args.timeout):
        print(f"The Rasa server did not answer at {args.server} within {args.timeout:.0f} s.",
              file=sys.stderr)
        return 1
    print(f"Chat page: {page_url(args.server)}  "
          f"(REST API: {args.server.rstrip('/')}/webhooks/rest/webhook)", flush=True)
    if args.chat:
        from rasa.core.channels.console import record_messages

        asyncio.run(record_messages(sender_id=f"shell-{uuid.uuid4().hex}",
                                    server_url=args.server.rstrip("/"),
                                    use_response_stream=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
