"""``modelway config check``: validate the config and show what it resolves to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelway.cli.app import app

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def check(
    config: Annotated[Path | None, typer.Option(help="Path to modelway.yaml.")] = None,
) -> None:
    """Validate the config; print resolved providers and aliases with keys masked."""
    from rich.console import Console
    from rich.table import Table

    from modelway.config import ConfigError, environment, load_config, mask_secret, shown_url
    from modelway.pricing import described, price_for, unpriced_warnings
    from modelway.providers.registry import SPECS, provider_settings
    from modelway.routing.resolve import Router, check_deployments_enabled

    environ = environment()
    try:
        settings = load_config(config, environ)
        Router(settings, environ)  # exactly what `serve` builds: what fails there fails here
        check_deployments_enabled(settings, environ)  # as `serve` does
        enabled = provider_settings(settings, environ)
    except ConfigError as exc:
        typer.echo(f"config error: {exc}", err=True)
        raise typer.Exit(2) from None
    # Names come from people (aliases, providers): shown as typed, never read as markup.
    console = Console(markup=False)
    providers = Table("provider", "wire", "base URL", "key", title="Providers")
    if "mock" not in settings.switched_off():
        providers.add_row("mock", "mock", "(built in)", "-")
    for name, provider in enabled.items():
        if name == "mock":  # shown above, once
            continue
        spec = SPECS.get(name)
        wire = provider.wire or (spec.wire if spec else "?")
        base_url = provider.base_url or (spec.base_url if spec else "-")
        providers.add_row(name, wire, shown_url(base_url), mask_secret(provider.api_key))
    console.print(providers)
    aliases = Table("alias", "strategy", "deployments", "fallbacks", title="Aliases")
    for alias in settings.models:
        deployments = ", ".join(
            f"{d.provider}/{d.model}" + (f" (weight {d.weight})" if d.weight > 1 else "")
            for d in alias.deployments
        )
        aliases.add_row(alias.name, alias.strategy, deployments, ", ".join(alias.fallbacks) or "-")
    console.print(aliases)
    prices = Table("deployment", "USD per million tokens", title="Prices")
    shown: set[tuple[str, str]] = set()
    for alias in settings.models:
        for d in alias.deployments:
            if (d.provider, d.model) not in shown:
                shown.add((d.provider, d.model))
                price = price_for(d.provider, d.model, settings.prices)
                prices.add_row(f"{d.provider}/{d.model}", described(price, d.provider))
    if shown:
        console.print(prices)
    for warning in unpriced_warnings(settings):
        typer.echo(f"warning: {warning}", err=True)
    console.print("config OK", style="green")
