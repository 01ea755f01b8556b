"""The web chat's page at ``/``, the admin dashboard's at ``/admin``, and their built
assets under ``/static/``.

The assets are built from ``web/`` by ``scripts/setup`` into the package's ``static``
folder. Their names carry a content hash, so they are cached for a year; the page that
names them is revalidated on every load. Without a build, ``/`` says how to make one.
Every HTML answer, whichever route makes it (``/``, ``/admin``, ``/static/index.html``, the
page without a build), carries the same ``SECURITY_HEADERS`` (``SecurityHeadersMiddleware``).
Both pages are public: the data behind them (``/chat/api/``, ``/admin/api/``) is guarded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: esbuild's ``[name]-[hash]`` file names: safe to cache for good.
HASHED_NAME = re.compile(r"-[A-Z0-9]{8}\.(?:js|css)$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: Defence in depth behind the sanitiser, on every HTML answer: no inline or foreign
#: script, no framing (``frame-ancestors``, and ``x-frame-options`` for older browsers).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_RAW_SECURITY_HEADERS = [
    (name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
]

MISSING_BUILD = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>modelway: web pages not built</title></head>
<body>
<h1>The web pages are not built yet</h1>
<p>The gateway is running, but the files of its web chat and admin dashboard are
missing. From the modelway source folder, run:</p>
<pre>scripts/setup</pre>
<p>It builds the front end from <code>web/</code> with npm (Node.js 18 or newer) into
<code>src/modelway/static/</code>. Then reload this page.</p>
<p>The API works without it: <a href="/v1/models">/v1/models</a>.</p>
</body>
</html>
"""


def built_page(name: str) -> Response:
    """The built page ``name``, or one that says to run ``scripts/setup`` when it is not built."""
    page = STATIC_DIR / name
    if not page.is_file():
        headers = {"cache-control": "no-store"}
        return HTMLResponse(MISSING_BUILD, status_code=503, headers=headers)
    headers = {"cache-control": REVALIDATE}
    return FileResponse(page, media_type="text/html; charset=utf-8", headers=headers)


async def chat_page(request: Request) -> Response:
    """The web chat."""
    return built_page("index.html")


async def admin_page(request: Request) -> Response:
    """The admin dashboard (its views are ``#/…`` fragments, so one path serves them all)."""
    return built_page("admin.html")


class BuiltAssets(StaticFiles):
    """Static files with a caching policy: hashed names forever, anything else revalidated."""

    async def check_config(self) -> None:
        """A missing build is answered with 404s (``/`` explains it), not a server error."""
        return None

    def file_response(
        self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        hashed = HASHED_NAME.search(str(full_path)) is not None
        response.headers["cache-control"] = IMMUTABLE if hashed else REVALIDATE
        response.headers["x-content-type-options"] = "nosniff"
        return response


class SecurityHeadersMiddleware:
    """Adds ``SECURITY_HEADERS`` to every HTML answer (those it already has are kept)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                if _is_html(headers):
                    present = {name.lower() for name, _ in headers}
                    headers += [h for h in _RAW_SECURITY_HEADERS if h[0] not in present]
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_secured)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lstrip().lower().startswith(b"text/html")
    return False


ROUTES = [
    Route("/", chat_page, methods=["GET", "HEAD"]),
    Route("/admin", admin_page, methods=["GET", "HEAD"]),
    Mount("/static", app=BuiltAssets(directory=STATIC_DIR, check_dir=False), name="static"),
]
