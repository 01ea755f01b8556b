"""``modelway keys create|list|revoke``: virtual keys, in the store or through a gateway."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from typer.core import TyperCommand

from modelway.cli.app import app
from modelway.cli.urls import gateway_url
from modelway.store.keys import MAX_RATE, MAX_TOKEN_BUDGET

keys_app = typer.Typer(help="Create, list and revoke virtual keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

NOT_SHOWN_AGAIN = "Copy this key now: it is stored only as a hash and will not be shown again."


class Period(StrEnum):
    """The period a budget covers."""

    day = "day"
    month = "month"
    total = "total"


UrlOption = Annotated[
    str | None,
    typer.Option(
        help="A running gateway's URL; without it the configured store is used.",
        callback=gateway_url,
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(help="Master key for --url (default: $MODELWAY_MASTER_KEY)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        help="The modelway.yaml whose store and Redis to use, as `serve --config` "
        "(default: $MODELWAY_CONFIG, else ./modelway.yaml)."
    ),
]


def target(
    url: str | None, key: str | None, config: Path | None = None
) -> tuple[str | None, str | None, dict[str, str]]:
    """``--url``, the master key to send there, and the environment (``.env`` included);
    ``--config`` names the file the store and Redis are read from without ``--url``."""
    from modelway.config import environment

    environ = environment()
    if key is not None and url is None:
        typer.echo("--key is for a gateway: give its --url too", err=True)
        raise typer.Exit(2)
    if config is not None:
        if url is not None:
            typer.echo("--config is for the store: a gateway at --url reads its own", err=True)
            raise typer.Exit(2)
        environ["MODELWAY_CONFIG"] = str(config)
    return url, key or environ.get("MODELWAY_MASTER_KEY") or None, environ


def _globs(values: list[str] | None) -> list[str]:
    """``--models a --models b`` and ``--models a,b`` alike. ``--models`` with nothing in
    it (an empty shell variable) is refused: the key it made would allow every model."""
    globs = [glob.strip() for value in values or [] for glob in value.split(",") if glob.strip()]
    if values and not globs:
        raise typer.BadParameter(
            "no model glob given; leave --models out for a key that may use every model",
            param_hint="--models",
        )
    return globs


def spread_models(args: list[str]) -> list[str]:
    """``--models a b`` as ``--models a --models b``: the words after ``--models``'s value,
    up to the next option, are more globs (a shell expands nothing quoted, so ``'gpt-*'``
    arrives as typed). After ``--`` nothing is touched."""
    spread: list[str] = []
    taking = False  # after --models and its value: a bare word is one more glob
    expecting_value = False
    for index, arg in enumerate(args):
        if arg == "--":
            return spread + args[index:]
        if expecting_value:
            spread.append(arg)
            expecting_value, taking = False, True
        elif taking and not arg.startswith("-"):
            spread += ["--models", arg]
        else:
            spread.append(arg)
            expecting_value = arg == "--models"
            taking = arg.startswith("--models=")
    return spread


class _SeveralModels(TyperCommand):
    """Click options take one value each; the contract writes ``--models GLOB...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, spread_models(args))


@keys_app.command("create", cls=_SeveralModels)
def create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    models: Annotated[
        list[str] | None,
        typer.Option(
            help="Allowed model globs: several after one --models, the flag repeated, or "
            "comma-separated; default: all."
        ),
    ] = None,
    rpm: Annotated[
        int | None, typer.Option(min=0, max=MAX_RATE, help="Requests per minute (0: none).")
    ] = None,
    tpm: Annotated[
        int | None, typer.Option(min=0, max=MAX_RATE, help="Tokens per minute (0: none).")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option(min=0, help="Budget in USD (0: no call may spend).")
    ] = None,
    budget_tokens: Annotated[
        int | None,
        typer.Option(min=0, max=MAX_TOKEN_BUDGET, help="Budget in tokens (0: no call may spend)."),
    ] = None,
    period: Annotated[Period, typer.Option(help="What the budget covers.")] = Period.month,
    user: Annotated[str | None, typer.Option(help="Owning user.")] = None,
    team: Annotated[str | None, typer.Option(help="Owning team.")] = None,
    expires_in_days: Annotated[
        float | None, typer.Option(min=0.001, help="Expire after this many days.")
    ] = None,
    json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it, once."""
    from modelway.cli.admin_client import run_admin
    from modelway.gateway.admin_api import NewKey

    new = NewKey(
        name=name,
        owner_user=user,
        owner_team=team,
        models=_globs(models),
        rpm=rpm,
        tpm=tpm,
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        budget_period=period.value,
        expires_in_days=expires_in_days,
    )
    url, key, environ = target(url, key, config)
    created = run_admin(lambda admin: admin.create_key(new), url, key, environ)
    if json:
        typer.echo(msgspec.json.encode(created).decode())
        return
    typer.echo(f"Created key {created['name']!r} (id {created['id']}):")
    typer.echo("")
    typer.echo(f"    {created['key']}")
    typer.echo("")
    typer.echo(NOT_SHOWN_AGAIN, err=True)


@keys_app.command("list")
def list_keys(
    json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Every key with its limits and status (never the key itself)."""
    from rich.console import Console
    from rich.table import Column, Table

    from modelway.cli.admin_client import run_admin

    url, key, environ = target(url, key, config)
    keys = run_admin(lambda admin: admin.list_keys(), url, key, environ)
    if json:
        typer.echo(msgspec.json.encode(keys).decode())
        return
    if not keys:
        typer.echo("no keys yet: create one with `modelway keys create --name NAME`")
        return
    # The id is what `keys revoke` takes: never cut, whatever the terminal's width.
    # The rest folds at a narrow terminal's edge rather than lose digits to an ellipsis.
    table = Table(
        Column("id", no_wrap=True, min_width=32),
        *(Column(name, overflow="fold") for name in ("name", "models", "limits")),
        Column("expires", no_wrap=True),
        Column("status", no_wrap=True),
    )
    for view in keys:
        table.add_row(
            view["id"],
            f"{view['name']} (mw-{view['prefix']}…)",
            ", ".join(view["models"]) or "all",
            _limits(view),
            _when(view["expires_at"]),
            view["status"],
        )
    Console(markup=False).print(table)  # names as typed: '[/]' is a name, not markup


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="The key's id (see `keys list`).")],
    url: UrlOption = None,
    key: KeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a key for good; a gateway refuses it within seconds."""
    from modelway.cli.admin_client import run_admin

    url, key, environ = target(url, key, config)
    revoked = run_admin(lambda admin: admin.revoke_key(key_id), url, key, environ)
    typer.echo(f"revoked key {revoked['name']!r} (id {revoked['id']})")


def _limits(view: dict[str, Any]) -> str:
    """Rate limits, budget and owner in one cell: ``10 rpm, $5.00 / day, team ml``."""
    from modelway.limits.budgets import dollars

    parts = [f"{view[name]} {name}" for name in ("rpm", "tpm") if view[name] is not None]
    budget = []
    if view["budget_usd"] is not None:
        budget.append(dollars(view["budget_usd"]))
    if view["budget_tokens"] is not None:
        budget.append(f"{view['budget_tokens']} tokens")
    if budget:
        parts.append(f"{' + '.join(budget)} / {view['budget_period']}")
    if view["owner_user"]:
        parts.append(f"user {view['owner_user']}")
    if view["owner_team"]:
        parts.append(f"team {view['owner_team']}")
    return ", ".join(parts) or "-"


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    try:
        return time.strftime("%Y-%m-%d", time.gmtime(epoch))
    except (OverflowError, OSError, ValueError):
        # Stored before expiries were bounded (year 9999), a time no calendar shows.
        return f"epoch {epoch:g}"
