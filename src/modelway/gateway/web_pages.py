"""The web chat's page at ``/`` and its built assets under ``/static/``.

The assets are built from ``web/`` by ``scripts/setup`` into the package's ``static``
folder. Their names carry a content hash, so they are cached for a year; the page that
names them is revalidated on every load. Without a build, ``/`` says how to make one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: esbuild's ``[name]-[hash]`` file names: safe to cache for good.
HASHED_NAME = re.compile(r"-[A-Z0-9]{8}\.(?:js|css)$")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: Defence in depth behind the sanitiser: no inline or foreign script, no framing.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": REVALIDATE,
}

MISSING_BUILD = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>modelway: web chat not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>The web chat is not built yet</h1>
<p>The gateway is running, but its web chat's files are missing. From the modelway
source folder, run:</p>
<pre>scripts/setup</pre>
<p>It builds the front end from <code>web/</code> with npm (Node.js 18 or newer) into
<code>src/modelway/static/</code>. Then reload this page.</p>
<p>The API works without it: <a href="/v1/models">/v1/models</a>.</p>
</body>
</html>
"""


async def chat_page(request: Request) -> Response:
    """The web chat, or a page that says to run ``scripts/setup`` when it is not built."""
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        headers = {"cache-control": "no-store"}
        return HTMLResponse(MISSING_BUILD, status_code=503, headers=headers)
    return FileResponse(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


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


ROUTES = [
    Route("/", chat_page, methods=["GET", "HEAD"]),
    Mount("/static", app=BuiltAssets(directory=STATIC_DIR, check_dir=False), name="static"),
]
