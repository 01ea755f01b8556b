"""``GET /metrics``: what every metered call reports, who may read it, and its bounds.

An in-process gateway (one process: the metrics are its own registry); the sum over
several workers is ``tests/integration/test_metrics_workers.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from modelway.calls import ANONYMOUS
from modelway.config import Cooldown
from modelway.errors import UpstreamStatusError
from modelway.limits.outage import RedisOutage
from modelway.observability.metrics import Metrics
from modelway.providers.transport import MockReply
from modelway.routing.deployments import DeploymentState
from modelway.types import ChatRequest, Message
from tests.polling import eventually
from tests.redis_server import free_port
from tests.unit.gateways import MASTER, Setup, in_process_gateway, openai_upstream

CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "one two three"}]}
ANTHROPIC = {
    "model": "mock/echo",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "one two"}],
}
PRICES = "prices:\n  mock/echo: {input_per_million: 1000000, output_per_million: 2000000}\n"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    # Wrong keys here are many (hypothesis): the address is never refused for them.
    config = (
        "metrics: {token: scrape-token-0123}\n"
        "server: {key_checks: {failures_per_address: 100000}}\n"
    )
    async with in_process_gateway(tmp_path, PRICES + config) as s:
        yield s


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(gateway: Setup, **headers: str) -> Samples:
    response = await gateway.http.get("/metrics", headers=headers or None)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples_of(response.text)


def samples_of(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


async def test_each_dialects_calls_are_counted_timed_and_priced(gateway: Setup) -> None:
    for _ in range(3):
        assert (await gateway.http.post("/v1/chat/completions", json=CHAT)).status_code == 200
    assert (await gateway.http.post("/v1/messages", json=ANTHROPIC)).status_code == 200
    streamed = await gateway.http.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert streamed.status_code == 200
    samples = await scrape(gateway)
    call = {"alias": "mock/echo", "provider": "mock", "model": "echo"}
    assert value(samples, "modelway_requests_total", dialect="openai", status_class="2xx") == 4
    assert value(samples, "modelway_requests_total", dialect="anthropic", **call) == 1
    count = "modelway_request_duration_seconds_count"
    assert value(samples, count, dialect="openai", stream="false") == 3
    assert value(samples, count, dialect="openai", stream="true") == 1
    assert value(samples, "modelway_time_to_first_token_seconds_count", dialect="openai") == 1
    assert value(samples, "modelway_overhead_seconds_count") == 5
    assert value(samples, "modelway_upstream_attempts_total", provider="mock", outcome="ok") == 5
    assert value(samples, "modelway_upstream_duration_seconds_count", outcome="ok") == 5
    # The mock counts words: 3 input tokens per OpenAI call, 2 for the Anthropic one.
    assert value(samples, "modelway_tokens_total", type="input", provider="mock") == 4 * 3 + 2
    output = value(samples, "modelway_tokens_total", type="output")
    assert output > 0
    cost = value(samples, "modelway_cost_usd_total", provider="mock", model="echo")
    assert cost == pytest.approx((4 * 3 + 2) * 1.0 + output * 2.0)
    assert value(samples, "modelway_in_flight_calls") == 0
    assert value(samples, "modelway_in_flight_streams") == 0
    assert value(samples, "modelway_build_info") == 1


def _cut_mid_stream(request: Any) -> Any:
    """An OpenAI stream that stops after its first chunk: no finish, no ``[DONE]``."""
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-x",
        "choices": [{"index": 0, "delta": {"content": "half an"}, "finish_reason": None}],
    }
    return MockReply(200, b"data: " + json.dumps(chunk).encode() + b"\n\n",
                     {"content-type": "text/event-stream"})  # fmt: skip


async def test_an_attempt_whose_stream_broke_mid_way_is_an_error_not_ok(tmp_path: Path) -> None:
    # The caller got a 502 (an error event) and the call counted as a 5xx, but its
    # attempt counted as outcome="ok".
    async with in_process_gateway(tmp_path, upstream=_cut_mid_stream) as gateway:
        relayed = {**CHAT, "model": "openai/gpt-x", "stream": True}
        translated = {**ANTHROPIC, "model": "openai/gpt-x", "stream": True}
        for path, body in (("/v1/chat/completions", relayed), ("/v1/messages", translated)):
            answer = await gateway.http.post(path, json=body)
            assert answer.status_code == 200 and "error" in answer.text  # an error event
        samples = await scrape(gateway)
        assert value(samples, "modelway_requests_total", status_class="5xx") == 2
        attempts = "modelway_upstream_attempts_total"
        assert value(samples, attempts, provider="openai", outcome="error") == 2
        assert value(samples, attempts, provider="openai", outcome="ok") == 0
        durations = "modelway_upstream_duration_seconds_count"
        assert value(samples, durations, outcome="error") == 2
        assert value(samples, durations, outcome="ok") == 0


async def test_calls_and_streams_in_flight_are_counted_while_they_run(gateway: Setup) -> None:
    calls = gateway.state.calls
    request = ChatRequest(
        model="mock/echo", messages=[Message(role="user", content="one two three")], stream=True
    )
    async with calls.open(ANONYMOUS, "mock/echo", dialect="openai", request_id="r1") as call:
        samples = await scrape(gateway)
        assert value(samples, "modelway_in_flight_calls", dialect="openai") == 1
        assert value(samples, "modelway_in_flight_streams", dialect="openai") == 0
        events = await call.stream(request)
        await anext(aiter(events))  # the stream is handed out and has begun
        samples = await scrape(gateway)
        assert value(samples, "modelway_in_flight_streams", dialect="openai") == 1
        async for _ in events:
            pass
    samples = await scrape(gateway)
    assert value(samples, "modelway_in_flight_calls", dialect="openai") == 0
    assert value(samples, "modelway_in_flight_streams", dialect="openai") == 0


async def test_refusals_are_counted_by_reason_and_limit(gateway: Setup) -> None:
    _, plaintext = await gateway.state.store.keys.create("k", models=["mock/echo"], rpm=1)
    headers = {"authorization": f"Bearer {plaintext}"}
    post = gateway.http.post
    assert (await post("/v1/chat/completions", json=CHAT, headers=headers)).status_code == 200
    assert (await post("/v1/chat/completions", json=CHAT, headers=headers)).status_code == 429
    other = {**CHAT, "model": "mock/other"}
    assert (await post("/v1/chat/completions", json=other, headers=headers)).status_code == 403
    wrong = {"authorization": "Bearer mw-not-a-key-000000000000000"}
    assert (await post("/v1/chat/completions", json=CHAT, headers=wrong)).status_code == 401
    samples = await scrape(gateway)
    refusals = "modelway_refusals_total"
    assert value(samples, refusals, reason="rate_limited", limit="requests") == 1
    assert value(samples, refusals, reason="model_not_allowed") == 1
    assert value(samples, refusals, reason="auth_failed") == 1
    # A refused call never routed: its requests series names no alias, provider or model;
    # the request refused for its key counts there too.
    assert value(samples, "modelway_requests_total", alias="", status_class="4xx") == 3


async def test_unknown_models_do_not_make_series(gateway: Setup) -> None:
    for number in range(30):
        body = {**CHAT, "model": f"made-up-model-{number}"}
        assert (await gateway.http.post("/v1/chat/completions", json=body)).status_code == 404
    samples = await scrape(gateway)
    names = {dict(labels).get("alias") for (n, labels) in samples if n == "modelway_requests_total"}
    assert names == {""}


async def test_label_sets_past_the_cap_are_counted_as_other(tmp_path: Path) -> None:
    async with in_process_gateway(tmp_path, "metrics: {max_series: 10}\n") as gateway:
        for number in range(25):  # the OpenAI upstream answers any model name
            body = {**CHAT, "model": f"openai/model-{number}"}
            assert (await gateway.http.post("/v1/chat/completions", json=body)).status_code == 200
        samples = await scrape(gateway)
    series = [labels for (n, labels) in samples if n == "modelway_requests_total"]
    assert len(series) == 11  # ten named, then "other"
    assert value(samples, "modelway_requests_total", alias="other", model="other") == 15
    assert value(samples, "modelway_requests_total") == 25


def _broken_or_answering(request: Any) -> Any:
    """The OpenAI upstream, except that ``broken`` fails every time."""
    if b'"broken"' in (request.body or b""):
        raise UpstreamStatusError("upstream 503", upstream_status=503)
    return openai_upstream(request)


async def test_past_the_cap_only_the_unbounded_labels_become_other(tmp_path: Path) -> None:
    config = "metrics: {max_series: 10}\n"
    async with in_process_gateway(tmp_path, config, upstream=_broken_or_answering) as gateway:
        for number in range(14):
            body = {**CHAT, "model": f"openai/model-{number}"}
            assert (await gateway.http.post("/v1/chat/completions", json=body)).status_code == 200
        broken = await gateway.http.post(
            "/v1/chat/completions", json={**CHAT, "model": "openai/broken"}
        )
        assert broken.status_code >= 500
        samples = await scrape(gateway)
    other = {"alias": "other", "provider": "other", "model": "other"}
    requests = "modelway_requests_total"
    assert value(samples, requests, dialect="openai", status_class="5xx", **other) == 1
    assert value(samples, requests, dialect="openai", status_class="2xx", **other) == 4
    assert value(samples, requests, dialect="other") == 0
    # Every answered call: 5 input tokens and 1 output token, each counted as its type.
    tokens = "modelway_tokens_total"
    assert value(samples, tokens, type="input") == 14 * 5
    assert value(samples, tokens, type="output") == 14
    assert value(samples, tokens, type="input", **{"provider": "other", "model": "other"}) > 0
    assert value(samples, tokens, type="other") == 0
    attempts = "modelway_upstream_attempts_total"
    assert value(samples, attempts, provider="other", model="other", outcome="error") >= 1
    assert value(samples, attempts, outcome="ok") == 14
    assert value(samples, attempts, outcome="other") == 0
    # Still bounded: ten named label sets, then one per value of the bounded labels.
    series = {labels for (n, labels) in samples if n == requests}
    assert len(series) == 12


async def test_deployment_health_and_the_usage_writer_are_copied_in(tmp_path: Path) -> None:
    config = (
        "models:\n  - name: fragile\n    deployments:\n      - {provider: openai, model: gpt-x}\n"
        "    retries: 0\n    cooldown: {failures: 1, seconds: 60}\n"
    )
    async with in_process_gateway(tmp_path, config, upstream=_failing) as gateway:
        refused = await gateway.http.post("/v1/chat/completions", json={**CHAT, "model": "fragile"})
        assert refused.status_code >= 500
        samples = await scrape(gateway)
        [deployment] = {
            dict(labels)["deployment"]
            for (n, labels) in samples
            if n == "modelway_deployment_state"
        }
        assert value(samples, "modelway_deployment_state", deployment=deployment) == 2  # cooling
        assert value(samples, "modelway_deployment_cooldowns_total", deployment=deployment) == 1
        assert value(samples, "modelway_upstream_attempts_total", outcome="error") >= 1
        assert value(samples, "modelway_requests_total", status_class="5xx") == 1

        async def written() -> float | None:
            found = value(await scrape(gateway), "modelway_usage_records_written_total")
            return found or None

        assert await eventually(written, what="usage records written") == 1
        assert value(samples, "modelway_usage_store_errors_total") == 0


def _failing(request: Any) -> Any:
    raise UpstreamStatusError("upstream 503", upstream_status=503)


class Deployments:
    """A router's deployment health, as ``Metrics.refresh`` reads it."""

    def __init__(self, *states: DeploymentState) -> None:
        self.states = list(states)

    def deployment_states(self) -> dict[str, list[DeploymentState]]:
        return {"smart": self.states}


def copied(state: DeploymentState) -> Samples:
    metrics = Metrics()
    metrics.watch(Deployments(state), None)  # type: ignore[arg-type]
    return samples_of(metrics.exposition().decode())


def test_a_rest_the_upstream_asked_for_is_no_failure_cooldown() -> None:
    # Every 503 with Retry-After counted as a cooldown: ModelwayDeploymentFlapping fired on
    # a healthy provider that only asked, now and then, to wait a second.
    state = DeploymentState("smart#0", Cooldown(failures=3, window=60, seconds=30))
    busy = UpstreamStatusError("busy", upstream_status=503, headers={"Retry-After": "1"})
    state.failed(busy, now=100.0)
    state.failed(busy, now=101.0)
    cooldowns = "modelway_deployment_cooldowns_total"
    samples = copied(state)
    assert value(samples, cooldowns, reason="retry_after") == 2
    assert value(samples, cooldowns, reason="failures") == 0
    state.failed(busy, now=102.0)  # the third failure in the window: benched for them
    samples = copied(state)
    assert value(samples, cooldowns, reason="failures") == 1
    assert value(samples, cooldowns, reason="probe_failed") == 0


def test_deployment_state_is_healthy_probing_or_cooling() -> None:
    # The contract's values (0 healthy, 1 probing, 2 cooling); an idle deployment whose
    # rest is over is probing until a call comes (ModelwayDeploymentCooling counts only
    # cooling, so it does not fire on an idle alias: deploy/prometheus/alerts-test.yml).
    state = DeploymentState("smart#0", Cooldown(failures=1, window=60, seconds=30))
    assert value(copied(state), "modelway_deployment_state") == 0
    state.failed(UpstreamStatusError("boom", upstream_status=500), now=time.monotonic())
    assert value(copied(state), "modelway_deployment_state") == 2
    state.cooled_until = time.monotonic() - 1  # its rest is over
    assert value(copied(state), "modelway_deployment_state") == 1
    assert state.admit(time.monotonic())  # a call probes it
    state.failed(UpstreamStatusError("boom", upstream_status=500), now=time.monotonic())
    assert value(copied(state), "modelway_deployment_state") == 2


async def test_redis_fail_open_episodes_are_counted(gateway: Setup) -> None:
    before = value(await scrape(gateway), "modelway_redis_fail_open_total")
    outage = RedisOutage("limits")
    outage.failed(ConnectionError("down"))
    outage.failed(ConnectionError("still down"))  # the same episode
    outage.succeeded()
    outage.failed(ConnectionError("down again"))
    assert value(await scrape(gateway), "modelway_redis_fail_open_total") == before + 2


# --- who may read it ----------------------------------------------------------------------


async def test_with_auth_the_master_key_or_the_metrics_token_is_needed(gateway: Setup) -> None:
    anonymous = await gateway.http.get("/metrics", headers={"authorization": ""})
    assert anonymous.status_code == 401
    _, plaintext = await gateway.state.store.keys.create("ordinary")
    ordinary = await gateway.http.get("/metrics", headers={"authorization": f"Bearer {plaintext}"})
    assert ordinary.status_code == 401
    token = await gateway.http.get(
        "/metrics", headers={"authorization": "Bearer scrape-token-0123"}
    )
    assert token.status_code == 200
    master = await gateway.http.get("/metrics", headers={"authorization": f"Bearer {MASTER}"})
    assert master.status_code == 200
    assert "scrape-token-0123" not in master.text and MASTER not in master.text
    # The two refused scrapes count as refused keys, as on any other route.
    assert value(await scrape(gateway), "modelway_refusals_total", reason="auth_failed") == 2
    twice = [("authorization", "Bearer scrape-token-0123"), ("authorization", "Bearer x")]
    assert (await gateway.http.get("/metrics", headers=twice)).status_code == 401


#: Header values a scraper (or an attacker) may send: near-misses of the real secrets,
#: odd schemes, control and non-Latin-1 characters, huge values.
CREDENTIALS = st.sampled_from(
    ["Bearer scrape-token-0123", f"Bearer {MASTER}", "Bearer scrape-token-012", "Bearer ",
     "bearer scrape-token-0123", "Basic c2NyYXBl", "Bearer scrape-token-0123 x", "\t", "",
     "Bearer " + "a" * 100_000]
) | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=60)  # fmt: skip


KEY_HEADERS = ["authorization", "x-api-key"]
#: Overrides the test client's own key: a request with no bearer token.
NO_BEARER = ("authorization", "")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.lists(st.tuples(st.sampled_from(KEY_HEADERS), CREDENTIALS), max_size=3))
async def test_no_credential_header_is_a_5xx_or_lets_a_wrong_key_in(
    gateway: Setup, values: list[tuple[str, str]]
) -> None:
    sent = values if any(n == "authorization" for n, _ in values) else [*values, NO_BEARER]
    raw = [(name.encode(), value.encode("latin-1")) for name, value in sent]
    answer = await gateway.http.get("/metrics", headers=raw)
    assert answer.status_code in (200, 401), answer.text
    secrets = ("scrape-token-0123", MASTER)
    if answer.status_code == 200:  # only for a secret, whole
        assert any(value.split()[-1:] in ([s] for s in secrets) for _, value in values), values
    else:
        assert answer.json()["error"]["message"]
    if values in ([("authorization", f"Bearer {s}")] for s in secrets):
        assert answer.status_code == 200


async def test_guessing_the_master_key_is_refused_after_the_addresss_failures(
    tmp_path: Path,
) -> None:
    config = (
        "metrics: {token: scrape-token-0123}\nserver: {key_checks: {failures_per_address: 5}}\n"
    )
    async with in_process_gateway(tmp_path, config) as gateway:
        for guess in range(5):
            wrong = {"authorization": f"Bearer guess-{guess}"}
            assert (await gateway.http.get("/metrics", headers=wrong)).status_code == 401
        # Past the address's failures even the right key is refused: a guess that lands is
        # not told apart from one that does not.
        right = await gateway.http.get("/metrics", headers={"authorization": f"Bearer {MASTER}"})
        assert right.status_code == 429, right.text
        assert right.json()["error"]["code"] == "too_many_failed_keys"
        assert int(right.headers["retry-after"]) >= 1
        # Scraping without a key guesses nothing and counts nothing.
        assert (
            await gateway.http.get("/metrics", headers={"authorization": ""})
        ).status_code == 401


async def test_open_mode_serves_loopback_and_the_metrics_token_only(tmp_path: Path) -> None:
    from modelway.config import parse_config
    from modelway.gateway.app import create_app

    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    app = create_app(parse_config("metrics: {token: scrape-token-0123}\n", environ), environ)
    token = {"authorization": "Bearer scrape-token-0123"}
    wrong = {"authorization": "Bearer scrape-token-9999"}
    cases = (
        (("127.0.0.1", 5), {}, 200),
        (("203.0.113.9", 5), {}, 403),
        (("203.0.113.9", 5), wrong, 403),
        (("203.0.113.9", 5), token, 200),
    )
    async with app.lifespan():
        for client, headers, status in cases:
            transport = httpx.ASGITransport(app=app, client=client)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
                assert (await http.get("/metrics", headers=headers)).status_code == status


async def test_switched_off_metrics_are_a_404(tmp_path: Path) -> None:
    async with in_process_gateway(tmp_path, "metrics: {enabled: false}\n") as gateway:
        assert (await gateway.http.get("/metrics")).status_code == 404
        assert (await gateway.http.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_names_follow_prometheus_conventions(gateway: Setup) -> None:
    await gateway.http.post("/v1/chat/completions", json=CHAT)
    text = (await gateway.http.get("/metrics")).text
    names = set(re.findall(r"^# TYPE (\w+) (\w+)", text, re.MULTILINE))
    assert names
    for name, kind in names:
        assert name.startswith("modelway_")
        if kind == "counter":
            assert name.endswith("_total")
        if kind == "histogram":
            assert name.endswith("_seconds")


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(authorization=st.text(max_size=200), path_tail=st.sampled_from(["", "/", "?x=1"]))
async def test_no_authorization_header_makes_metrics_fail(
    gateway: Setup, authorization: str, path_tail: str
) -> None:
    headers = {"authorization": authorization.encode("utf-8", "ignore").decode("latin-1")}
    try:
        response = await gateway.http.get("/metrics" + path_tail, headers=headers)
    except (httpx.LocalProtocolError, ValueError):
        return  # a header httpx itself will not send
    assert response.status_code in (200, 401, 404), response.text


async def test_a_scrape_says_redis_is_down_though_no_call_used_it(tmp_path: Path) -> None:
    # No limited key, no cache: nothing asked Redis, and the gauge stayed 1 all outage.
    config = f"redis: {{url: 'redis://127.0.0.1:{free_port()}/0'}}\n"
    async with in_process_gateway(tmp_path, config) as gateway:
        samples = await scrape(gateway)
        assert value(samples, "modelway_dependency_up", dependency="redis") == 0
        assert value(samples, "modelway_dependency_up", dependency="store") == 1


def test_with_several_workers_a_dependency_is_what_the_latest_worker_saw(tmp_path: Path) -> None:
    """Each worker keeps its own value; the scrape gives the one just pinged for. With the
    lowest of them, Redis read down for as long as any worker had not yet seen it back."""

    def worker_saw(up: int) -> None:  # a worker process setting the gauge, then gone
        code = (
            "from modelway.observability.metrics import Metrics\n"
            f"Metrics().dependency_up.labels('redis').set({up})\n"
        )
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)

    worker_saw(0)  # one worker saw the outage...
    worker_saw(1)  # ...the one answering this scrape just pinged Redis back up
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=str(tmp_path))  # type: ignore[no-untyped-call]
    samples = samples_of(generate_latest(merged).decode())
    assert value(samples, "modelway_dependency_up", dependency="redis") == 1


async def test_a_scrape_is_rendered_off_the_event_loop(
    gateway: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of series (a key holder can name that many models) took ~0.75 s to
    render: on the loop, every call on the worker waited for each scrape."""
    metrics = gateway.state.metrics
    assert metrics is not None
    rendered_on: list[threading.Thread] = []
    render = metrics.render

    def recorded() -> bytes:
        rendered_on.append(threading.current_thread())
        return render()

    monkeypatch.setattr(metrics, "render", recorded)
    await scrape(gateway, authorization="Bearer scrape-token-0123")
    assert rendered_on and rendered_on[0] is not threading.current_thread()
