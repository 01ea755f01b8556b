"""``modelway cache clear`` sends the gateway the namespace it was given, even an empty
one: only no ``--namespace`` at all means the whole cache."""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiohttp
from aiohttp import web

from modelway.cli.admin_client import GatewayAdmin


async def test_an_empty_namespace_reaches_the_gateway_rather_than_clearing_everything() -> None:
    seen: list[dict[str, str]] = []

    async def clear(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        return web.json_response({"removed": 0, "namespace": request.query.get("namespace")})

    app = web.Application()
    app.router.add_delete("/admin/api/cache", clear)
    runner = web.AppRunner(app)
    await runner.setup()
    # A Unix socket: unit tests open no network connection (and its path must be short).
    with tempfile.TemporaryDirectory(prefix="mw-") as directory:
        socket_path = str(Path(directory, "gateway.sock"))
        try:
            await web.UnixSite(runner, socket_path).start()
            connector = aiohttp.UnixConnector(path=socket_path)
            async with aiohttp.ClientSession(connector=connector) as session:
                admin = GatewayAdmin(session, "http://gateway")
                for namespace in ("", None, "team:red"):
                    await admin.clear_cache(namespace)
        finally:
            await runner.cleanup()
    assert seen == [{"namespace": ""}, {}, {"namespace": "team:red"}]
