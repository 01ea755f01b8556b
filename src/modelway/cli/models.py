"""``modelway models``: the models the gateway can serve with this configuration."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelway.cli.app import app

if TYPE_CHECKING:
    from modelway.types import ModelInfo


async def _list(config: Path | None) -> list[ModelInfo]:
    from modelway.config import environment, load_config
    from modelway.engine import Engine

    environ = environment()
    engine = Engine(load_config(config, environ), environ)
    try:
        infos = await engine.models()
        for name, reason in engine.unlisted.items():
            typer.echo(f"warning: {name}'s models are left out: {reason}", err=True)
        return infos
    finally:
        await engine.aclose()


@app.command()
def models(
    config: Annotated[Path | None, typer.Option(help="Path to modelway.yaml.")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List aliases and every enabled provider's models."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    from modelway.config import ConfigError

    try:
        infos = asyncio.run(_list(config))
    except ConfigError as exc:
        typer.echo(f"config error: {exc}", err=True)
        raise typer.Exit(2) from None
    if json:
        typer.echo(orjson.dumps([{"id": m.id, "owned_by": m.owned_by} for m in infos]).decode())
        return
    table = Table("model", "provider")
    for info in infos:
        table.add_row(info.id, info.owned_by)
    Console(markup=False).print(table)  # names as typed: '[/]' is a name, not markup
