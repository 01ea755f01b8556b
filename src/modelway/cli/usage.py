"""``modelway usage``: requests, tokens, cost and latency per key, model, provider, alias,
team or day."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import msgspec
import typer

from modelway.cli.app import app
from modelway.cli.keys import ConfigOption, JsonOption, KeyOption, UrlOption, target

#: The length of a key's id (uuid4 hex, ``store.records.new_id``).
KEY_ID_LENGTH = 32


class Grouping(StrEnum):
    """What a usage summary groups by."""

    key = "key"
    model = "model"
    provider = "provider"
    alias = "alias"
    team = "team"
    day = "day"


@app.command()
def usage(
    by: Annotated[
        Grouping,
        typer.Option(
            help="Group by key, model (the provider's name for it), provider, alias "
            "(the name called), team or UTC day."
        ),
    ] = Grouping.key,
    since: Annotated[
        str | None, typer.Option(help="Only usage from this date on (YYYY-MM-DD, UTC).")
    ] = None,
    key_id: Annotated[str | None, typer.Option(help="Only this key's usage.")] = None,
    json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Summarise the usage audit."""
    from rich.console import Console
    from rich.table import Column, Table

    from modelway.cli.admin_client import run_admin

    url, key, environ = target(url, key, config)
    summary = run_admin(lambda admin: admin.usage(by.value, since, key_id), url, key, environ)
    if json:
        typer.echo(msgspec.json.encode(summary).decode())
        return
    rows: list[dict[str, Any]] = summary["rows"]
    if not rows:
        whose = f" for key id {key_id}" if key_id else ""
        typer.echo(f"no usage recorded{whose}" + (f" since {since}" if since else "") + " yet")
        if key_id and len(key_id) < KEY_ID_LENGTH:
            typer.echo(
                f"(--key-id takes a key's whole id, {KEY_ID_LENGTH} characters, as "
                "`modelway keys list` shows it)"
            )
        return
    # A day, a model name, a key's id (what --key-id takes): folded at a narrow
    # terminal's edge, never cut short with an ellipsis.
    # Headers short enough that the figures keep whole at 80 columns.
    caption = "input, output: tokens; p50, p95: latency"
    if any(row.get("unpriced_requests") for row in rows):
        caption += "\nunpriced, +?: calls to a model with no price (cost unknown, not $0)"
    table = Table(Column(by.value, overflow="fold", min_width=10), caption=caption)
    for number in ("calls", "errors", "input", "output", "cost", "p50 ms", "p95 ms"):
        table.add_column(number, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            _group(row, by),
            f"{row['requests']:,}",
            f"{row['errors']:,}",
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            _cost(row),
            _milliseconds(row["latency_p50_ms"]),
            _milliseconds(row["latency_p95_ms"]),
        )
    Console(markup=False).print(table)  # names as typed: '[/]' is a name, not markup


def _group(row: dict[str, Any], by: Grouping) -> str:
    group = row["group"]
    if by is Grouping.key:
        if group is None:
            return "(no key: master, open, or refused)"
        return f"{row.get('key_name') or '?'} ({group})"
    if group is None and by in (Grouping.model, Grouping.provider):
        return "(refused before routing)"  # a limit, a budget, a model the key may not use
    if group is None and by is Grouping.team:
        return "(no team)"
    return group or "-"


def _cost(row: dict[str, Any]) -> str:
    """The row's cost; "unpriced" when nothing priced was spent but some calls had no
    price, and "$1.20+?" when some had none (an older gateway's rows say nothing of it)."""
    from modelway.limits.budgets import dollars

    unpriced = row.get("unpriced_requests") or 0
    if not unpriced:
        return dollars(row["cost_usd"])
    if not row["cost_usd"]:
        return "unpriced"
    return f"{dollars(row['cost_usd'])}+?"


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
