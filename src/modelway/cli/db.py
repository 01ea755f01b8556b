"""``modelway db upgrade``: apply the store's migrations (``serve`` also does at start)."""

from __future__ import annotations

import asyncio

import typer

from modelway.cli.app import app

db_app = typer.Typer(help="Manage the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


async def _upgrade(url: str) -> str | None:
    from modelway.store import Store
    from modelway.store.migrate import current_revision

    store = await Store.open(url)
    try:
        return await current_revision(store.engine)
    finally:
        await store.aclose()


@db_app.command("upgrade")
def upgrade() -> None:
    """Run the migrations up to the newest schema."""
    # Imported here, as in every command: `modelway --help` should not load the gateway.
    from modelway.config import ConfigError, environment, load_config
    from modelway.store import database_url, display_url

    environ = environment()
    try:
        # store.url of $MODELWAY_CONFIG or ./modelway.yaml, as serve would use it.
        url = database_url(environ, load_config(None, environ).store.url)
    except (ValueError, ConfigError) as exc:
        typer.echo(f"database error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # the data directory cannot be made (as `serve` says it)
        typer.echo(f"cannot use the data directory: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"database: {display_url(url)}")
    try:
        revision = asyncio.run(_upgrade(url))
    except Exception as exc:  # connection refused, bad credentials, locked file...
        typer.echo(f"database error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"schema at revision {revision} (newest)")
