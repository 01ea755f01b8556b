"""The Grafana dashboard's queries against a real Prometheus scraping two real gateways.

``modelway mock`` upstream, two ``modelway serve`` replicas on one SQLite store (as worker
processes share it), a master key (so ``/metrics`` wants a bearer token, read from a
``credentials_file`` as in ``deploy/prometheus/prometheus.yml``), and Debian's
``prometheus`` scraping both every second with ``deploy/prometheus/alerts.yml`` loaded.
Two rounds of mixed traffic — OpenAI and Anthropic SDKs, streamed and not, a failover, a
fallback, a benched deployment, a failing alias, an unknown model, and each kind of
refusal — then every query of ``deploy/grafana/dashboards/modelway.json`` must return
data, every metric family the dashboard names must have series, and every alert rule
must evaluate without error.

Two rounds, because a counter's first sample already holds its first events: only an
increase between two scrapes gives ``rate()`` (and so every quantile) a value.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml

from modelway.store import Store, database_url
from tests.integration.gateway import running_gateway
from tests.polling import wait_until
from tests.processes import stop
from tests.redis_server import free_port
from tests.unit.test_deploy_observability import (
    METRIC_NAME,
    PROMETHEUS,
    alert_rules,
    dashboard_queries,
)

MASTER = "master-test-key-0123456789"
HELLO: Any = [{"role": "user", "content": "hello there"}]  # each SDK's message type

ALIASES = """
models:
  - name: chat
    deployments:
      - {provider: openai, model: echo}
      - {provider: anthropic, model: echo}
  - name: broken
    retries: 0
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:500"}}
  - name: flaky
    retries: 0
    cooldown: {failures: 1, window: 60, seconds: 300}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:500"}}
      - {provider: anthropic, model: echo}
  - name: primary-down
    retries: 0
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:500"}}
    fallbacks: [chat]
prices:
  openai/echo: {input_per_million: 2.5, output_per_million: 10.0}
  anthropic/echo: {input_per_million: 3.0, output_per_million: 15.0}
"""


def store_call(env: dict[str, str], work: Callable[[Store], Any]) -> Any:
    async def run() -> Any:
        store = await Store.open(database_url(env))
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def create_key(env: dict[str, str], **settings: Any) -> str:
    _, key = store_call(env, lambda store: store.keys.create("dashboard-test", **settings))
    return str(key)


# Prometheus


class Prometheus:
    """A ``prometheus`` server on a free loopback port, its config and data in ``root``."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus not found: run scripts/system-packages")
        log = self.root / "prometheus.log"
        # The port is free when picked but may be taken before prometheus binds it.
        for _ in range(5):
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            with log.open("wb") as output:
                self._process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={self.root / 'prometheus.yml'}",
                        f"--storage.tsdb.path={self.root / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--storage.tsdb.retention.time=1h",
                    ],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            if wait_until(self._settled, what="prometheus starting") == "ready":
                return
            if "address already in use" not in log.read_text(errors="replace"):
                break
        raise RuntimeError(f"prometheus did not start:\n{log.read_text(errors='replace')}")

    def _settled(self) -> str:
        assert self._process is not None
        if self._process.poll() is not None:
            return "exited"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                return "ready"
        return ""

    def stop(self) -> None:
        if self._process is None:
            return
        stop(self._process)

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) ``expr`` gives now."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result


@contextlib.contextmanager
def running_prometheus(targets: list[str], token: str) -> Iterator[Prometheus]:
    with tempfile.TemporaryDirectory(prefix="modelway-prometheus-") as directory:
        root = Path(directory)
        (root / "token").write_text(token)
        shutil.copy(PROMETHEUS / "alerts.yml", root / "alerts.yml")
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(root / "alerts.yml")],
            "scrape_configs": [
                {
                    # As deploy/prometheus/prometheus.yml: the job name the dashboard uses,
                    # the token from a file.
                    "job_name": "modelway",
                    "metrics_path": "/metrics",
                    "authorization": {"type": "Bearer", "credentials_file": str(root / "token")},
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        server = Prometheus(root, config)
        try:
            server.start()
            yield server
        finally:
            server.stop()


def both_scraped_since(prometheus: Prometheus, moment: float) -> bool:
    """Whether each replica has been scraped, successfully, after ``moment``."""
    found = prometheus.query('timestamp(up{job="modelway"} == 1)')
    return len(found) == 2 and all(float(s["value"][1]) > moment for s in found)


def has_data(result: list[dict[str, Any]]) -> bool:
    """Some sample with a number (a quantile over no observations is NaN)."""
    return any(not math.isnan(float(sample["value"][1])) for sample in result)


# Traffic


def send_traffic(replicas: list[str], keys: dict[str, str]) -> None:
    """One round of mixed traffic over both replicas; every outcome is as planned."""
    for url in replicas:
        with (
            openai.OpenAI(base_url=f"{url}/v1", api_key=MASTER, max_retries=0) as gpt,
            anthropic.Anthropic(base_url=url, api_key=MASTER, max_retries=0) as claude,
        ):
            for model in ("chat", "flaky", "primary-down", "openai/echo"):
                reply = gpt.chat.completions.create(model=model, messages=HELLO)
                assert reply.choices[0].message.content == "hello there"
            # Streams to fixed deployments: a label set seen in one round only has no rate.
            chunks = gpt.chat.completions.create(model="openai/echo", messages=HELLO, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            message = claude.messages.create(model="chat", max_tokens=20, messages=HELLO)
            assert message.content
            with claude.messages.stream(
                model="anthropic/echo", max_tokens=20, messages=HELLO
            ) as stream:
                assert stream.get_final_text() == "hello there"
            with pytest.raises(openai.NotFoundError):
                gpt.chat.completions.create(model="groq/not-configured", messages=HELLO)
            with pytest.raises(openai.APIStatusError) as failed:
                gpt.chat.completions.create(model="broken", messages=HELLO)
            assert failed.value.status_code >= 500
        # Refusals: a wrong key, a model the key may not use, its rpm, its budget.
        assert _chat(url, "mw-not-a-real-key-00000000000000000000000000").status_code == 401
        assert _chat(url, keys["mock-only"], "openai/echo").status_code == 403
        statuses = [_chat(url, keys[f"rpm-{url}"]).status_code for _ in range(2)]
        assert 429 in statuses
        statuses = [_chat(url, keys[f"budget-{url}"]).status_code for _ in range(2)]
        assert 429 in statuses


def _chat(url: str, key: str, model: str = "chat") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_every_dashboard_query_returns_data_from_two_replicas(mock_url: str) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelway-dashboard-") as data:
        env = {
            "MODELWAY_DATA_DIR": data,
            "MODELWAY_MASTER_KEY": MASTER,
            "OPENAI_BASE_URL": f"{mock_url}/v1",
            "OPENAI_API_KEY": "sk-test-openai-key",
            "ANTHROPIC_BASE_URL": mock_url,
            "ANTHROPIC_API_KEY": "sk-ant-test-key",
        }
        with contextlib.ExitStack() as stack:
            replicas = [stack.enter_context(running_gateway(env, ALIASES)) for _ in range(2)]
            keys = {"mock-only": create_key(env, models=["chat"])}
            for url in replicas:  # limits are per replica without Redis: a key each
                keys[f"rpm-{url}"] = create_key(env, rpm=1)
                keys[f"budget-{url}"] = create_key(env, budget_tokens=3, budget_period="day")
            targets = [url.removeprefix("http://") for url in replicas]
            prometheus = stack.enter_context(running_prometheus(targets, MASTER))

            def targets_up() -> bool:
                active = prometheus.api("targets")["activeTargets"]
                return len(active) == 2 and all(t["health"] == "up" for t in active)

            wait_until(targets_up, what="both replicas scraped with the token")
            for _ in range(2):
                send_traffic(replicas, keys)
                # Prometheus's own clock, which its timestamps use (this process's may be
                # moved: scripts/test-future).
                sent = float(prometheus.query("time()")[0]["value"][1])
                wait_until(
                    lambda moment=sent: both_scraped_since(prometheus, moment),  # type: ignore[misc]
                    what="a scrape of both replicas after the traffic",
                )

            queries = dashboard_queries()
            empty: list[str] = []

            def all_answer() -> bool:
                empty[:] = [
                    f"{title}: {expr}"
                    for title, expr in queries
                    if not has_data(prometheus.query(expr))
                ]
                return not empty

            # Usage records are written in batches: the last round's may land a scrape later.
            with contextlib.suppress(AssertionError):
                wait_until(all_answer, within=10, every=0.5)
            assert not empty, "queries without data:\n" + "\n".join(empty)

            # Each metric the dashboard names has series: its events were made, so no
            # panel passed on its "or vector(0)" alone.
            names = sorted({name for _, expr in queries for name in METRIC_NAME.findall(expr)})
            missing = [name for name in names if not prometheus.query(f"count({name})")]
            assert not missing, f"no series of {missing}"

            # The real Prometheus loads every alert rule and evaluates it without error.
            def rules_evaluated() -> list[dict[str, Any]]:
                groups = prometheus.api("rules")["groups"]
                rules = [rule for group in groups for rule in group["rules"]]
                return rules if all(rule["health"] != "unknown" for rule in rules) else []

            rules = wait_until(rules_evaluated, within=10, what="alert rules evaluated")
            assert len(rules) == len(alert_rules())
            failing = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
            assert not failing, failing
    assert time.monotonic() - started < 60
