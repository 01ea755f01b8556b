"""How the usage charts read: counts on whole-number ticks, and latencies under a
millisecond or two with their decimals — with traffic and with none."""

from __future__ import annotations

import json
import re
import time

from playwright.sync_api import Locator, Page, expect

from tests.browser.admin_page import go_to

#: A bucket's figures as the usage API gives them.
FIGURES = {
    "requests": 1, "errors": 0, "prompt_tokens": 12, "completion_tokens": 3,
    "cached_tokens": 0, "reasoning_tokens": 0, "cost_usd": 0.0, "latency_p50_ms": 0.5,
    "latency_p95_ms": 0.8, "ttft_p50_ms": 0.25, "ttft_p95_ms": 1.5,
}  # fmt: skip


def y_ticks(usage: Locator, title: str) -> list[str]:
    """The labels of a chart's value axis, as drawn on its canvas."""
    chart = usage.locator(f'figure.chart[data-chart="{title}"]')
    expect(chart).to_have_attribute("data-y-ticks", re.compile(r"^\["))
    return list(json.loads(chart.get_attribute("data-y-ticks") or "[]"))


def test_a_range_without_traffic_has_distinct_latency_ticks_and_whole_counts(admin: Page) -> None:
    go_to(admin, "Usage")
    usage = admin.locator(".usage-view")
    usage.get_by_label("From", exact=True).fill("2001-01-01")
    usage.get_by_label("To", exact=True).fill("2001-01-03")
    usage.get_by_role("button", name="Apply").click()
    expect(usage.locator(".tile").filter(has_text="Requests")).to_contain_text("0")
    expect(usage.locator(".chart-grid").first).to_have_attribute("data-points", "0")

    for title in ("Requests and errors", "Tokens"):
        assert y_ticks(usage, title) == ["0", "1"], title
    for title in ("Latency", "Time to first token"):
        ticks = y_ticks(usage, title)
        assert len(set(ticks)) == len(ticks) > 1, (title, ticks)  # not "1 ms, 1 ms, 0 ms"


def test_counts_tick_whole_and_a_sub_millisecond_latency_keeps_its_decimals(
    admin: Page,
) -> None:
    # The store's percentiles cannot be steered by a real call: the figures are routed.
    hour = int(time.time() // 3600 * 3600)
    series = {"bucket": "hour", "from": hour - 86_400, "to": hour + 3600,
              "points": [{"t": hour, **FIGURES}]}  # fmt: skip
    admin.route(re.compile(r"/admin/api/usage/series\?"), lambda route: route.fulfill(json=series))
    admin.route(re.compile(r"/admin/api/usage/totals\?"), lambda route: route.fulfill(json=FIGURES))
    go_to(admin, "Usage")
    usage = admin.locator(".usage-view")
    usage.get_by_role("button", name="Apply").click()
    latency = usage.locator(".tile").filter(has_text="Latency p50")
    expect(latency.locator(".tile-value")).to_have_text("0.5 ms / 0.8 ms")
    ttft = usage.locator(".tile").filter(has_text="TTFT p50")
    expect(ttft.locator(".tile-value")).to_have_text("0.25 ms / 1.5 ms")

    for title in ("Requests and errors", "Tokens"):
        ticks = y_ticks(usage, title)
        assert all(re.fullmatch(r"\d+", tick) for tick in ticks), (title, ticks)
    ticks = y_ticks(usage, "Latency")
    assert len(set(ticks)) == len(ticks) and "0.4 ms" in ticks, ticks
