"""``modelway cache stats|clear``: a running gateway's response cache (docs/cache.md)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import typer

from modelway.cli.app import app
from modelway.cli.keys import JsonOption, KeyOption, target

cache_app = typer.Typer(help="See and clear a gateway's response cache.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

GatewayUrl = Annotated[str, typer.Option(help="The running gateway's URL.")]
DEFAULT_URL = "http://127.0.0.1:8080"


@cache_app.command("stats")
def stats(json: JsonOption = False, url: GatewayUrl = DEFAULT_URL, key: KeyOption = None) -> None:
    """What the cache holds: backend, entries, bytes."""
    from modelway.cli.admin_client import Admin, GatewayAdmin, run_admin

    async def read(admin: Admin) -> dict[str, Any]:
        assert isinstance(admin, GatewayAdmin)  # a URL always opens the gateway
        return await admin.cache_stats()

    answer = run_admin(read, *target(url, key))
    if json:
        typer.echo(msgspec.json.encode(answer).decode())
        return
    bound = answer.get("max_bytes")
    of = f" of {bound}" if bound else ""
    typer.echo(f"{answer['backend']}: {answer['entries']} entries, {answer['bytes']} bytes{of}")
    section = f"ttl {answer['ttl']:g} s, namespace {answer['namespace']}"
    if answer.get("every_alias", True):
        typer.echo(f"every alias: {section}")
    else:
        typer.echo(f"no cache: section (aliases that turn it on take {section})")
    for own in answer.get("aliases", []):
        fields = ", ".join(f"{name} {value}" for name, value in own.items() if name != "alias")
        typer.echo(f"alias {own['alias']}: {fields}")


@cache_app.command("clear")
def clear(
    namespace: Annotated[
        str | None,
        typer.Option(help="Only this namespace: team:<name>, key:<id>, shared, master or open."),
    ] = None,
    json: JsonOption = False,
    url: GatewayUrl = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Drop every cached answer (and idempotency key), or one namespace's."""
    from modelway.cli.admin_client import Admin, GatewayAdmin, run_admin

    async def drop(admin: Admin) -> dict[str, Any]:
        assert isinstance(admin, GatewayAdmin)
        return await admin.clear_cache(namespace)

    answer = run_admin(drop, *target(url, key))
    if json:
        typer.echo(msgspec.json.encode(answer).decode())
        return
    where = "" if namespace is None else f" from {namespace}"
    typer.echo(f"removed {answer['removed']} entries{where}")
