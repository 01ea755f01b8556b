"""Where ``modelway keys`` and ``modelway usage`` do their work: the store or a gateway.

``StoreAdmin`` opens the configured store (``store.url``, ``DATABASE_URL`` or the data
directory, as ``serve`` does); ``GatewayAdmin`` calls a running gateway's admin API with the master
key. Both answer with the admin API's JSON shapes, so the commands print one way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec
import typer

from modelway.errors import ModelwayError
from modelway.gateway import admin_api, key_changes
from modelway.gateway.admin_api import NewKey
from modelway.gateway.key_changes import KeyChanges
from modelway.store import Store, database_url

API = "/admin/api"
TIMEOUT_SECONDS = 30.0
Result = TypeVar("Result")


class AdminError(Exception):
    """A failure worth one line on stderr: never a traceback, never a key."""


class Admin(Protocol):
    """The admin operations the CLI needs, answered in the admin API's JSON shapes."""

    async def create_key(self, new: NewKey) -> dict[str, Any]: ...
    async def list_keys(self) -> list[dict[str, Any]]: ...
    async def revoke_key(self, key_id: str) -> dict[str, Any]: ...
    async def usage(self, by: str, since: str | None, key_id: str | None) -> dict[str, Any]: ...


class StoreAdmin:
    """The configured store, opened directly; with Redis, a revocation is announced to
    every gateway sharing it (``gateway.key_changes``)."""

    def __init__(self, store: Store, changes: KeyChanges | None = None) -> None:
        self._store = store
        self._changes = changes or KeyChanges(None, None)

    async def create_key(self, new: NewKey) -> dict[str, Any]:
        return await admin_api.create_key(self._store, new)

    async def list_keys(self) -> list[dict[str, Any]]:
        return await admin_api.list_keys(self._store)

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        revoked = await admin_api.revoke_key(self._store, key_id)
        await self._changes.changed(key_id)
        return revoked

    async def usage(self, by: str, since: str | None, key_id: str | None) -> dict[str, Any]:
        return await admin_api.usage_summary(self._store, by, since, key_id)


class GatewayAdmin:
    """A running gateway's admin API, called with the master key."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url

    async def create_key(self, new: NewKey) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("POST", "/keys", msgspec.to_builtins(new))
        return answer

    async def list_keys(self) -> list[dict[str, Any]]:
        answer = await self._call("GET", "/keys")
        keys: list[dict[str, Any]] = answer["keys"]
        return keys

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("DELETE", f"/keys/{quote(key_id, safe='')}")
        return answer

    async def usage(self, by: str, since: str | None, key_id: str | None) -> dict[str, Any]:
        query = {"by": by, "since": since, "key_id": key_id}
        params = {name: value for name, value in query.items() if value}
        answer: dict[str, Any] = await self._call("GET", "/usage", params=params)
        return answer

    async def cache_stats(self) -> dict[str, Any]:
        """The response cache's backend, entries and bytes (``GET /admin/api/cache``)."""
        answer: dict[str, Any] = await self._call("GET", "/cache")
        return answer

    async def clear_cache(self, namespace: str | None) -> dict[str, Any]:
        """Drop the response cache's entries, or one namespace's (None: all)."""
        # Only None means all: an empty namespace goes to the gateway, which refuses it.
        params = None if namespace is None else {"namespace": namespace}
        answer: dict[str, Any] = await self._call("DELETE", "/cache", params=params)
        return answer

    async def _call(
        self,
        method: str,
        path: str,
        body: object = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        try:
            async with self._session.request(
                method, self._url + API + path, json=body, params=params
            ) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise AdminError(f"cannot reach the gateway at {self._url}: {reason}") from None
        try:
            answer = msgspec.json.decode(text)
        except msgspec.DecodeError:
            answer = None
        if status >= 400:
            raise AdminError(_refusal(self._url, status, answer))
        if not isinstance(answer, dict):
            raise AdminError(f"the gateway at {self._url} did not answer with JSON")
        return answer


def _refusal(url: str, status: int, answer: object) -> str:
    message = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        message = answer["error"].get("message")
    if status == 401:
        said = f" ({message})" if message else ""
        return f"the gateway at {url} refused the key{said}; give the master key with --key"
    if message is None and status == 404:
        return f"{url} has no admin API (HTTP 404): is it a modelway gateway with a master key?"
    return f"{message} (HTTP {status})" if message else f"HTTP {status} from {url}"


@asynccontextmanager
async def open_admin(
    url: str | None, key: str | None, environ: Mapping[str, str]
) -> AsyncIterator[Admin]:
    """The gateway at ``url`` when given, else the configured store."""
    if url is not None:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            yield GatewayAdmin(session, url.rstrip("/"))
        return
    from modelway.config import ConfigError, load_config

    try:
        config = load_config(None, environ)  # the store and Redis serve would find
        redis_url = config.redis_url(environ)
    except (ConfigError, ValueError) as exc:
        raise AdminError(str(exc)) from None
    configured = config.store.url
    try:
        store = await Store.open(database_url(environ, configured))
    except Exception as exc:  # bad URL, refused connection, locked or unreadable file...
        first_line = (str(exc).splitlines() or [""])[0]
        raise AdminError(f"cannot open the store: {type(exc).__name__}: {first_line}") from None
    changes = KeyChanges(None, None if redis_url is None else key_changes.connect(redis_url))
    try:
        yield StoreAdmin(store, changes)
    finally:
        try:
            await changes.aclose()
        finally:
            await store.aclose()


def run_admin(
    operation: Callable[[Admin], Coroutine[Any, Any, Result]],
    url: str | None,
    key: str | None,
    environ: Mapping[str, str],
) -> Result:
    """Run ``operation`` on the store or gateway; a failure is one line on stderr, exit 1."""

    async def run() -> Result:
        async with open_admin(url, key, environ) as admin:
            return await operation(admin)

    try:
        return asyncio.run(run())
    except (AdminError, ModelwayError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:  # the store failed mid-way
        # SQLAlchemy puts the statement and its parameters (a key hash...) after line one.
        first_line = (str(exc).splitlines() or [""])[0]
        typer.echo(f"error: {type(exc).__name__}: {first_line}", err=True)
        raise typer.Exit(1) from None
