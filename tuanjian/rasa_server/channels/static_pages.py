"""The two pages the channels serve (the chat page and the help desk): the
folder's own files, with headers that keep everything on this origin."""
from pathlib import Path

from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

PAGE = "index.html"

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


def servable_files(folder: Path) -> dict[str, Path]:
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

    def serve(name: str) -> HTTPResponse:
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
    async def asset(request: Request, name: str) -> HTTPResponse:
        return serve(name)
