"""The response cache through the in-process gateway: headers, records, idempotency keys,
and no request body or header combination answered with a 5xx."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelway.cache import CacheControl, MemoryBackend, ResponseCache
from modelway.calls import Caller
from modelway.config import CacheSettings
from modelway.errors import IdempotencyKeyInProgress, IdempotencyKeyReused
from modelway.gateway.dialect_paths import CHAT_PATHS
from modelway.logs import JsonFormatter
from modelway.providers.transport import MockReply, UpstreamRequest
from modelway.types import ChatRequest, ChatResponse, Message, TextPart
from tests.polling import eventually
from tests.unit.gateways import MASTER, Setup, in_process_gateway, openai_upstream
from tests.unit.test_gateway_asgi import _CHAT_FIELDS, records
from tests.unit.test_request_log import Captured, _capture
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

PRICES = """
prices:
  openai/gpt-x: {input_per_million: 1000000, output_per_million: 1000000}
"""
CONFIG = "cache: {ttl: 300}\n" + PRICES
#: The in-process upstream answers direct ``provider/model`` names (no alias).
MODEL = "openai/gpt-x"
QUESTION = {"messages": [{"role": "user", "content": "hello"}], "temperature": 0}


class Upstream:
    """``openai_upstream``, counting the calls that reach it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: UpstreamRequest) -> MockReply:
        self.calls += 1
        await asyncio.sleep(0)  # concurrent callers interleave here
        return openai_upstream(request)


@pytest.fixture
async def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def gateway(tmp_path: Path, upstream: Upstream) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path, CONFIG, upstream=upstream) as setup:
        yield setup


async def test_a_repeat_is_a_hit_with_its_age_recorded_free_with_the_cost_saved(
    gateway: Setup, upstream: Upstream
) -> None:
    first = await gateway.http.post("/v1/chat/completions", json={"model": MODEL, **QUESTION})
    again = await gateway.http.post("/v1/chat/completions", json={"model": MODEL, **QUESTION})
    assert first.headers["x-modelway-cache"] == "miss" and "age" not in first.headers
    assert again.headers["x-modelway-cache"] == "hit" and int(again.headers["age"]) >= 0
    assert again.headers["x-modelway-provider"] == "openai"
    assert again.json() == first.json()
    assert upstream.calls == 1
    hit, miss = await records(gateway.state, 2)
    assert (miss.cache_hit, miss.cost_saved_usd) == (False, 0.0) and miss.cost_usd == 6.0
    assert (hit.cache_hit, hit.cost_usd, hit.cost_saved_usd) == (True, 0.0, 6.0)
    assert (hit.provider, hit.model, hit.prompt_tokens) == ("openai", "gpt-x", 0)


async def test_a_hit_on_a_stream_is_replayed_as_a_stream(
    gateway: Setup, upstream: Upstream
) -> None:
    await gateway.http.post("/v1/chat/completions", json={"model": MODEL, **QUESTION})
    body = {"model": MODEL, "stream": True, **QUESTION}
    async with gateway.http.stream("POST", "/v1/chat/completions", json=body) as response:
        text = (await response.aread()).decode()
    assert response.headers["x-modelway-cache"] == "hit"
    assert '"content":"hi"' in text.replace(" ", "") and text.rstrip().endswith("data: [DONE]")
    assert upstream.calls == 1


async def test_nondeterministic_calls_go_upstream_each_time(
    gateway: Setup, upstream: Upstream
) -> None:
    for _ in range(2):
        warm = {"model": MODEL, "messages": QUESTION["messages"], "temperature": 0.9}
        varied = await gateway.http.post("/v1/chat/completions", json=warm)
        assert varied.headers["x-modelway-cache"] == "bypass"
    assert upstream.calls == 2


async def test_without_a_cache_section_nothing_is_cached_or_labelled(tmp_path: Path) -> None:
    upstream = Upstream()
    async with in_process_gateway(tmp_path, PRICES, upstream=upstream) as setup:
        for _ in range(2):
            plain = await setup.http.post("/v1/chat/completions", json={"model": MODEL, **QUESTION})
            assert "x-modelway-cache" not in plain.headers
    assert upstream.calls == 2


async def test_cache_control_refreshes_skips_storing_and_bounds_the_age(
    gateway: Setup, upstream: Upstream
) -> None:
    async def ask(cache_control: str) -> str:
        answer = await gateway.http.post(
            "/v1/chat/completions",
            json={"model": MODEL, **QUESTION},
            headers={"cache-control": cache_control},
        )
        return str(answer.headers["x-modelway-cache"])

    assert await ask("no-store") == "miss"  # looked up, found nothing, kept nothing
    assert await ask("max-age=60") == "miss"
    assert await ask("max-age=60") == "hit"
    assert await ask("max-age=0") == "miss"  # however young the entry: asked again
    assert await ask("no-cache") == "miss"  # asked again and refreshed
    assert await ask("no-cache, no-store") == "bypass"
    assert upstream.calls == 5


async def test_a_replay_a_minute_later_is_byte_for_byte_the_first_answer(
    gateway: Setup, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer whose provider gave no ``created`` is stamped once, when it is kept: a
    replay encoded at a later second (or a repeat of an idempotency key) is identical."""
    import modelway.dialects.openai as openai_dialect

    real = time.time
    body = {"model": MODEL, **QUESTION}
    first = await gateway.http.post(
        "/v1/chat/completions", json=body, headers={"idempotency-key": "later"}
    )
    monkeypatch.setattr(openai_dialect.time, "time", lambda: real() + 60)
    hit = await gateway.http.post("/v1/chat/completions", json=body)
    repeat = await gateway.http.post(
        "/v1/chat/completions", json=body, headers={"idempotency-key": "later"}
    )
    assert hit.headers["x-modelway-cache"] == "hit"
    assert hit.text == first.text == repeat.text
    assert upstream.calls == 1


async def test_concurrent_repeats_of_an_idempotency_key_share_one_upstream_call(
    gateway: Setup, upstream: Upstream
) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "pay once"}]}

    async def post() -> tuple[int, str]:
        answer = await gateway.http.post(
            "/v1/chat/completions", json=body, headers={"idempotency-key": "order-17"}
        )
        return answer.status_code, answer.text

    answers = await asyncio.gather(*(post() for _ in range(20)))
    assert {status for status, _ in answers} == {200}
    assert len({text for _, text in answers}) == 1
    assert upstream.calls == 1
    other = {**body, "messages": [{"role": "user", "content": "pay twice"}]}
    reused = await gateway.http.post(
        "/v1/messages",
        json={**other, "max_tokens": 10},
        headers={"idempotency-key": "order-17"},
    )
    assert reused.status_code == 422
    assert reused.json()["type"] == "error"  # in the caller's dialect, Anthropic's here
    assert upstream.calls == 1


async def test_a_failed_first_request_frees_its_idempotency_key(tmp_path: Path) -> None:
    replies = iter([MockReply(500, b'{"error": {"message": "down"}}')])

    def flaky(request: UpstreamRequest) -> MockReply:
        return next(replies, None) or openai_upstream(request)

    async with in_process_gateway(
        tmp_path, CONFIG + "server: {retries: 0}\n", upstream=flaky
    ) as setup:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
        headers = {"idempotency-key": "retry-me"}
        failed = await setup.http.post("/v1/chat/completions", json=body, headers=headers)
        retried = await setup.http.post("/v1/chat/completions", json=body, headers=headers)
    assert failed.status_code >= 500 and retried.status_code == 200


async def test_an_idempotency_key_sent_twice_is_refused(gateway: Setup) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    twice = [("idempotency-key", "one"), ("idempotency-key", "two")]
    refused = await gateway.http.post("/v1/chat/completions", json=body, headers=twice)
    assert refused.status_code == 400
    assert "Idempotency-Key: sent more than once" in refused.json()["error"]["message"]


def _request(text: str) -> ChatRequest:
    return ChatRequest(model="m", messages=[Message(role="user", content=[TextPart(text)])])


async def test_a_repeat_waits_for_its_first_request_then_gives_up_with_409() -> None:
    cache = ResponseCache(MemoryBackend(10_000), CacheSettings(idempotency_wait=0.05), poll=0.01)
    caller = Caller(key_id="k", name="k", team="red")
    first = await cache.begin(caller, "m", _request("a"), CacheControl(), "key-1")
    assert first.status == "miss" and first.entry is None
    with pytest.raises(IdempotencyKeyInProgress):
        await cache.begin(caller, "m", _request("a"), CacheControl(), "key-1")
    with pytest.raises(IdempotencyKeyReused):
        await cache.begin(caller, "m", _request("b"), CacheControl(), "key-1")
    # Another team's same key is its own.
    blue = Caller(key_id="k2", name="k2", team="blue")
    assert (await cache.begin(blue, "m", _request("b"), CacheControl(), "key-1")).entry is None
    answer = ChatResponse(id="r1", model="m", message=Message(role="assistant"))
    await first.keep(answer, "openai", "gpt-x")
    repeat = await cache.begin(caller, "m", _request("a"), CacheControl(), "key-1")
    assert repeat.status == "hit" and repeat.entry is not None
    assert repeat.entry.response.id == "r1"


_HEADER_TEXT = st.text(max_size=30) | st.sampled_from(
    ["no-cache", "no-store", "max-age=0", "max-age=99999999999999999999", "no-cache,no-store"]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(sorted(CHAT_PATHS)),
    body=_CHAT_FIELDS.map(lambda fields: {**fields, "model": MODEL, "temperature": 0})
    .map(json.dumps)
    .map(str.encode)
    | _CHAT_FIELDS.map(json.dumps).map(str.encode),
    cache_control=st.none() | _HEADER_TEXT,
    idempotency_key=st.none() | st.text(max_size=300),
)
async def test_no_body_or_cache_header_is_a_500(
    gateway: Setup,
    path: str,
    body: bytes,
    cache_control: str | None,
    idempotency_key: str | None,
) -> None:
    headers: dict[str, str] = {}
    for name, value in (("cache-control", cache_control), ("idempotency-key", idempotency_key)):
        if value is not None:
            headers[name] = value.encode("utf-8", "surrogatepass").decode("latin-1")
    try:
        response = await gateway.http.post(path, content=body, headers=headers)
    except UnicodeEncodeError:
        return  # httpx cannot send that header at all
    assert response.status_code < 500, response.text


async def test_a_repeat_that_outwaits_its_first_request_gets_a_409_in_its_dialect(
    tmp_path: Path,
) -> None:
    release = asyncio.Event()

    async def stuck(request: UpstreamRequest) -> MockReply:
        await release.wait()
        return openai_upstream(request)

    config = "cache: {idempotency_wait: 0.2}\n"
    async with in_process_gateway(tmp_path, config, upstream=stuck) as setup:
        body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        headers = {"idempotency-key": "slow-one"}
        first = asyncio.create_task(setup.http.post("/v1/messages", json=body, headers=headers))
        await eventually(lambda: setup.state.calls.cache is not None and _claimed(setup))
        repeat = await setup.http.post("/v1/messages", json=body, headers=headers)
        release.set()
        assert (await first).status_code == 200
    assert repeat.status_code == 409 and repeat.headers["retry-after"] == "1"
    assert repeat.json()["type"] == "error"  # Anthropic's error shape


def _claimed(setup: Setup) -> bool:
    cache = setup.state.calls.cache
    assert cache is not None and isinstance(cache.backend, MemoryBackend)
    return cache.backend.bytes > 0


async def test_hits_misses_and_bypasses_are_counted_per_alias_and_logged(
    gateway: Setup,
) -> None:
    await gateway.http.post("/v1/chat/completions", json={"model": MODEL, **QUESTION})
    await gateway.http.post("/v1/chat/completions", json={"model": MODEL, **QUESTION})
    varied = {"model": MODEL, "messages": QUESTION["messages"], "temperature": 1}
    await gateway.http.post("/v1/chat/completions", json=varied)
    metrics = gateway.state.metrics
    assert metrics is not None
    metrics.refresh()
    text = metrics.exposition().decode()
    for result in ("hit", "miss", "bypass"):
        line = f'modelway_cache_requests_total{{alias="{MODEL}",result="{result}"}} 1.0'
        assert line in text
    assert f'modelway_cache_saved_cost_usd_total{{alias="{MODEL}"}} 6.0' in text
    assert f'modelway_cache_stored_bytes_total{{alias="{MODEL}"}}' in text


@pytest.fixture
def request_lines() -> Iterator[Captured]:
    """The JSON request lines the gateway logs."""
    yield from _capture(JsonFormatter())


async def test_the_request_line_says_hit_miss_or_bypass(
    gateway: Setup, request_lines: Captured
) -> None:
    varied = {"model": MODEL, "messages": QUESTION["messages"], "temperature": 1}
    for request_id, body in (("r-miss", QUESTION), ("r-hit", QUESTION), ("r-bypass", varied)):
        answer = await gateway.http.post(
            "/v1/chat/completions",
            json={"model": MODEL, **body},
            headers={"x-request-id": request_id},
        )
        assert answer.status_code == 200
    # Request lines are written a little after each call ends (a ``later`` hook).
    await eventually(lambda: len(request_lines.json()) == 3, what="three request lines")
    lines = {line["request_id"]: line for line in request_lines.json()}
    assert [lines[rid]["cache"] for rid in ("r-miss", "r-hit", "r-bypass")] == [
        "miss",
        "hit",
        "bypass",
    ]
    assert lines["r-hit"]["cost_usd"] == 0 and lines["r-hit"]["provider"] == "openai"


async def test_a_cache_hit_answers_the_idempotency_key_it_came_with(
    gateway: Setup, upstream: Upstream
) -> None:
    body = {"model": MODEL, **QUESTION}
    await gateway.http.post("/v1/chat/completions", json=body)  # now in the cache
    headers = {"idempotency-key": "after-a-hit"}
    first = await gateway.http.post("/v1/chat/completions", json=body, headers=headers)
    repeat = await gateway.http.post("/v1/chat/completions", json=body, headers=headers)
    assert first.headers["x-modelway-cache"] == repeat.headers["x-modelway-cache"] == "hit"
    assert repeat.json() == first.json() and upstream.calls == 1


# --- tenants and clears ------------------------------------------------------------------


async def _key_of_team(setup: Setup, team: str) -> dict[str, str]:
    """A new key of ``team``: its id and the headers that call with it."""
    created = await setup.http.post("/admin/api/keys", json={"name": "k", "owner_team": team})
    assert created.status_code == 201, created.text
    body = created.json()
    return {"id": body["id"], "authorization": f"Bearer {body['key']}"}


async def _ask(setup: Setup, caller: dict[str, str], temperature: float = 0, **headers: str) -> str:
    answer = await setup.http.post(
        "/v1/chat/completions",
        json={"model": MODEL, **QUESTION, "temperature": temperature},
        headers={"authorization": caller["authorization"], **headers},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.headers["x-modelway-cache"])


async def test_a_team_named_like_a_cleared_namespace_never_gets_its_answers(
    gateway: Setup, upstream: Upstream
) -> None:
    """Once ``team:x`` was cleared its entries moved on; a team whose own name spells
    where they moved to (``x#0.1`` was that once) still has a namespace of its own."""
    x = await _key_of_team(gateway, "x")
    lookalike = await _key_of_team(gateway, "x#0.1")
    cleared = await gateway.http.delete("/admin/api/cache", params={"namespace": "team:x"})
    assert cleared.status_code == 200, cleared.text
    assert await _ask(gateway, x) == "miss"
    assert await _ask(gateway, lookalike) == "miss"
    # Not cached (temperature 1), kept only under the idempotency key: each team's own.
    once = {"idempotency-key": "order-1"}
    assert await _ask(gateway, x, temperature=1, **once) == "miss"
    assert await _ask(gateway, lookalike, temperature=1, **once) == "miss"
    assert await _ask(gateway, x, temperature=1, **once) == "hit"
    assert await _ask(gateway, x) == await _ask(gateway, lookalike) == "hit"
    assert upstream.calls == 4


async def _clear(setup: Setup, namespace: str) -> httpx.Response:
    return await setup.http.delete("/admin/api/cache", params={"namespace": namespace})


@pytest.mark.parametrize(
    "namespace",
    ["*", "", "team", "everything", "shared:x", "key:", "team:nobody", "key:no-such-id", "t" * 301],
)
async def test_clearing_a_namespace_the_cache_never_uses_is_400_and_clears_nothing(
    gateway: Setup, upstream: Upstream, namespace: str
) -> None:
    assert await _ask(gateway, {"authorization": f"Bearer {MASTER}"}) == "miss"
    refused = await _clear(gateway, namespace)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["message"].startswith("namespace: ")
    assert await gateway.state.store.cache_clears.generations() == {}
    assert await _ask(gateway, {"authorization": f"Bearer {MASTER}"}) == "hit"
    assert upstream.calls == 1


async def test_each_namespace_the_cache_uses_can_be_cleared_alone(gateway: Setup) -> None:
    red = await _key_of_team(gateway, "red")
    await gateway.http.post("/admin/api/teams", json={"name": "blue"})  # a team without keys
    master = {"authorization": f"Bearer {MASTER}"}
    assert await _ask(gateway, red) == await _ask(gateway, master) == "miss"
    namespaces = ["team:red", "team:blue", f"key:{red['id']}", "shared", "open"]
    for namespace in namespaces:
        cleared = await _clear(gateway, namespace)
        assert cleared.status_code == 200, cleared.text
        assert cleared.json() == {"removed": int(namespace == "team:red"), "namespace": namespace}
    assert await _ask(gateway, red) == "miss" and await _ask(gateway, master) == "hit"
    assert (await _clear(gateway, "master")).json()["removed"] == 1
    assert await _ask(gateway, master) == "miss"
    assert set(await gateway.state.store.cache_clears.generations()) == {*namespaces, "master"}


async def test_idempotency_keys_are_each_tenants_own_in_a_shared_cache(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Entries of a ``shared`` cache are everyone's; idempotency keys never are: before,
    one team's key blocked another's (422) and told it that the key had been used."""
    shared = "cache: {ttl: 300, namespace: shared}\n" + PRICES
    async with in_process_gateway(tmp_path, shared, upstream=upstream) as setup:
        red, blue = await _key_of_team(setup, "red"), await _key_of_team(setup, "blue")

        async def order(caller: dict[str, str], text: str) -> httpx.Response:
            body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
            headers = {"authorization": caller["authorization"], "idempotency-key": "order-1"}
            return await setup.http.post("/v1/chat/completions", json=body, headers=headers)

        assert (await order(red, "red's order")).status_code == 200
        blues = await order(blue, "blue's order")
        assert blues.status_code == 200, blues.text
        assert (await order(red, "another body")).status_code == 422  # red's key, reused
        assert upstream.calls == 2


async def test_cache_stats_say_which_aliases_the_cache_is_on_for(
    tmp_path: Path, upstream: Upstream
) -> None:
    # Only an alias turns it on: the stats said "ttl 300 s" as if every alias cached.
    config = (
        "models:\n  - name: smart\n    cache: {ttl: 60}\n"
        "    deployments: [{provider: openai, model: gpt-4o}]\n"
    )
    async with in_process_gateway(tmp_path, config, upstream=upstream) as setup:
        stats = (await setup.http.get("/admin/api/cache")).json()
    assert stats["every_alias"] is False
    assert stats["aliases"] == [{"alias": "smart", "enabled": True, "ttl": 60.0}]
    async with in_process_gateway(tmp_path, CONFIG, upstream=upstream) as setup:
        stats = (await setup.http.get("/admin/api/cache")).json()
    assert stats["every_alias"] is True
