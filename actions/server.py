"""The action server: rasa-sdk's own app, closed to everyone but the Rasa server.

    python -m actions.server [--port 5055]

It differs from `rasa run actions` in what an outsider can do with it:
- it listens on 127.0.0.1 unless TUANJIAN_ACTIONS_HOST says otherwise (a
  container network); rasa-sdk listens on every interface;
- every route but /health needs `Authorization: Bearer $ACTION_SERVER_TOKEN`
  (endpoints.yml makes Rasa send it); without the variable it does not start,
  nor without TUANJIAN_THROTTLE_KEY, which keys the verification throttle;
- a body must be JSON (Content-Type application/json), so a web page cannot
  fire an action with a simple text/plain request; no CORS headers at all;
- an error answers {"error": ...} and nothing of the request (rasa-sdk's own
  handler echoes the whole tracker back).
"""
import argparse
import hmac
import logging
import sys
from collections.abc import Sequence

from rasa_sdk.endpoint import create_app as create_sdk_app
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from tuanjian import settings

logger = logging.getLogger(__name__)
OPEN_ROUTES = ("/health",)


def create_app(token: str | None, actions_package: str = "actions") -> Sanic:
    if not token:
        raise ValueError(f"{settings.ACTION_SERVER_TOKEN} is needed")
    app = create_sdk_app(actions_package, cors_origins=None)
    expected = f"Bearer {token}".encode()

    @app.on_request
    async def authorise(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_ROUTES:
            return None
        given = (request.headers.get("Authorization") or "").encode("utf-8")
        if not hmac.compare_digest(given, expected):
            return response.json({"error": "unauthorized"}, status=401)
        if request.method == "POST":
            content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                return response.json({"error": "body must be application/json"}, status=415)
        return None

    # Replaces rasa-sdk's handler, which puts the request body (the tracker) in the reply.
    @app.exception(Exception)
    async def on_error(request: Request, exception: Exception) -> HTTPResponse:
        status = getattr(exception, "status_code", 500)
        if status >= 500:
            logger.error("action server error on %s", request.path, exc_info=exception)
        return response.json({"error": "action server error" if status >= 500 else str(exception)},
                             status=status)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=settings.DEFAULT_ACTIONS_PORT)
    parser.add_argument("--actions", default="actions")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s - %(message)s")
    token = settings.secret(settings.ACTION_SERVER_TOKEN)
    for name in (settings.ACTION_SERVER_TOKEN, settings.THROTTLE_KEY):
        if not settings.secret(name):
            print(f"{name} is not set: the action server does not start without it "
                  "(scripts/run.sh generates one).", file=sys.stderr)
            return 2
    host = settings.actions_host()
    app = create_app(token, args.actions)
    logger.info("action server on http://%s:%s", host, args.port)
    app.run(host, args.port, workers=1, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
