"""Screenshots of the admin dashboard for the docs:
``python -m tests.browser.capture_admin_screenshots``.

A real gateway with a master key gets keys and teams through its admin API and a week of
usage records seeded into its store (a fixed random seed, so the pictures only change
when the page does); Debian's Chromium signs in and photographs the usage and keys views,
light and dark on a desktop, and on a phone.
"""

from __future__ import annotations

import asyncio
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, ViewportSize, expect, sync_playwright

from modelway.store import Store, UsageRecord, database_url
from tests.browser.admin_page import AS_MASTER, MASTER_KEY, go_to, sign_in
from tests.browser.conftest import CHROMIUM
from tests.integration.gateway import running_gateway

DOCS = Path(__file__).resolve().parents[2] / "docs"
TEAMS = [{"name": "product", "budget_usd": 60.0}, {"name": "research"}]
KEYS: list[dict[str, Any]] = [
    {"name": "web-app", "owner_team": "product", "rpm": 600, "budget_usd": 25.0},
    {"name": "batch-jobs", "owner_team": "research", "tpm": 200_000, "budget_usd": 40.0},
    {"name": "support-bot", "owner_team": "product", "rpm": 120, "models": ["claude-*"]},
    {"name": "ci-evals", "owner_user": "dana@example.com", "budget_tokens": 5_000_000},
    {"name": "notebook", "owner_user": "sam@example.com"},
]
#: model, provider, USD per 1k input tokens, per 1k output tokens, typical latency (ms).
MODELS = [
    ("gpt-4o-mini", "openai", 0.00015, 0.0006, 900.0),
    ("claude-sonnet-4", "anthropic", 0.003, 0.015, 2400.0),
    ("gemini-2.5-flash", "gemini", 0.0003, 0.0025, 1300.0),
]
DAYS = 7


def _make_accounts(url: str) -> list[str]:
    """The teams and keys, made as an operator would; the keys' ids."""
    with httpx.Client(base_url=url, headers=AS_MASTER) as admin:
        for team in TEAMS:
            admin.post("/admin/api/teams", json=team).raise_for_status()
        ids = []
        for key in KEYS:
            created = admin.post("/admin/api/keys", json=key)
            created.raise_for_status()
            ids.append(str(created.json()["id"]))
        admin.delete(f"/admin/api/keys/{ids[-1]}").raise_for_status()  # one revoked key
    return ids


def _records(key_ids: list[str], now: float) -> list[UsageRecord]:
    """A week of traffic with a daily rhythm, a few errors, streams with a first token."""
    rng = random.Random(17)
    records: list[UsageRecord] = []
    start = now - DAYS * 86_400
    weights = [5, 3, 2, 1, 1]
    teams = [key.get("owner_team") for key in KEYS]
    for hour in range(DAYS * 24):
        at = start + hour * 3600
        rhythm = 1.2 + math.sin((hour % 24 - 9) / 24 * 2 * math.pi)
        for _ in range(int(rng.uniform(4, 9) * rhythm)):
            index = rng.choices(range(len(key_ids)), weights)[0]
            model, provider, price_in, price_out, latency = rng.choice(MODELS)
            failed = rng.random() < 0.04
            prompt = int(rng.lognormvariate(6.5, 0.8))
            completion = 0 if failed else int(rng.lognormvariate(5.3, 0.7))
            stream = rng.random() < 0.6
            records.append(
                UsageRecord(
                    request_id=f"seed-{hour}-{len(records)}",
                    time=at + rng.uniform(0, 3600),
                    key_id=key_ids[index],
                    team=teams[index],
                    dialect="openai",
                    alias=None,
                    provider=provider,
                    model=model,
                    status=rng.choice([429, 500, 502]) if failed else 200,
                    error_type=("rate_limit" if rng.random() < 0.5 else "upstream_error")
                    if failed
                    else None,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cached_tokens=int(prompt * rng.choice([0, 0, 0.3, 0.6])),
                    cost_usd=prompt / 1000 * price_in + completion / 1000 * price_out,
                    latency_ms=latency * rng.lognormvariate(0, 0.35),
                    ttft_ms=latency * 0.25 * rng.lognormvariate(0, 0.3) if stream else None,
                    stream=stream,
                )
            )
    return records


async def _seed(environ: dict[str, str], records: list[UsageRecord]) -> None:
    store = await Store.open(database_url(environ))
    try:
        for first in range(0, len(records), 500):
            await store.usage.insert_many(records[first : first + 500])
    finally:
        await store.aclose()


def _shoot(browser: Browser, url: str) -> None:
    shots: list[tuple[str, ViewportSize, str]] = [
        ("light", {"width": 1280, "height": 1000}, "light"),
        ("dark", {"width": 1280, "height": 1000}, "dark"),
        ("phone", {"width": 390, "height": 844}, "light"),
    ]
    for suffix, viewport, scheme in shots:
        context = browser.new_context(
            base_url=url,
            viewport=viewport,
            color_scheme=scheme,  # type: ignore[arg-type]
            device_scale_factor=2 if viewport["width"] < 500 else 1,
        )
        page = context.new_page()
        sign_in(page)
        go_to(page, "Usage")
        expect(page.locator("figure.chart canvas").first).to_be_visible()
        page.screenshot(path=str(DOCS / f"admin-usage-{suffix}.png"))
        go_to(page, "Keys")
        page.get_by_label("Status").select_option("all")
        expect(page.locator(".keys-view tbody tr")).to_have_count(len(KEYS))
        page.screenshot(path=str(DOCS / f"admin-keys-{suffix}.png"))
        context.close()
        print(f"wrote docs/admin-usage-{suffix}.png and docs/admin-keys-{suffix}.png")


def main() -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        environ = {"MODELWAY_DATA_DIR": data_dir, "MODELWAY_MASTER_KEY": MASTER_KEY}
        with running_gateway(environ) as url:
            key_ids = _make_accounts(url)
            # Before playwright starts: its sync API keeps an event loop running.
            asyncio.run(_seed(environ, _records(key_ids, time.time())))
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=str(CHROMIUM))
                try:
                    _shoot(browser, url)
                finally:
                    browser.close()


if __name__ == "__main__":
    main()
