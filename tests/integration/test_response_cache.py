"""The response cache and idempotency keys against real processes: two ``modelway serve``
replicas sharing a real Redis, a ``modelway mock`` upstream that counts what it answers,
and the official openai, anthropic and ollama SDKs as callers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, NamedTuple

import anthropic
import httpx
import ollama
import openai
import pytest

from tests.integration.gateway import running_gateway
from tests.integration.mockserver import providers_at, running_mock
from tests.integration.test_keys_pipeline import create_key
from tests.polling import wait_until
from tests.redis_server import running_redis

pytestmark = pytest.mark.integration

MASTER = "master-test-key-for-the-cache-0123456789"
CONFIG = """
cache: {ttl: 300, idempotency_wait: 30}
models:
  - name: smart
    deployments: [{provider: openai, model: echo}]
  - name: claude
    deployments: [{provider: anthropic, model: echo}]
  - name: local
    deployments: [{provider: ollama, model: echo}]
  - name: slow
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-first-token:400"}}
  - name: slower
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-first-token:1500"}}
  - name: truncated
    retries: 0
    deployments: [{provider: openai, model: echo, headers: {x-mock-fault: truncate}}]
  - name: truncated-anthropic
    retries: 0
    deployments: [{provider: anthropic, model: echo, headers: {x-mock-fault: truncate}}]
  - name: broken
    retries: 0
    deployments: [{provider: openai, model: echo, headers: {x-mock-fault: "error:500"}}]
  - name: stalling
    deployments: [{provider: openai, model: echo, headers: {x-mock-fault: "stall:1500"}}]
  - name: fresh
    cache: false
    deployments: [{provider: openai, model: echo}]
"""
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up",
            "parameters": {
                "type": "object",
                "properties": {"word": {"type": "string"}},
                "required": ["word"],
            },
        },
    }
]


class Replicas(NamedTuple):
    mock: str
    first: str
    second: str
    first_env: dict[str, str]


@pytest.fixture(scope="module")
def replicas() -> Iterator[Replicas]:
    with (
        running_mock() as mock,
        running_redis() as redis_url,
        tempfile.TemporaryDirectory() as one,
        tempfile.TemporaryDirectory() as two,
    ):
        base = {**providers_at(mock), "MODELWAY_MASTER_KEY": MASTER, "REDIS_URL": redis_url}
        first_env = {**base, "MODELWAY_DATA_DIR": one}
        with (
            running_gateway(first_env, CONFIG) as first,
            running_gateway({**base, "MODELWAY_DATA_DIR": two}, CONFIG) as second,
        ):
            yield Replicas(mock, first, second, first_env)


def upstream_calls(replicas: Replicas) -> int:
    return int(httpx.get(f"{replicas.mock}/mock/stats").json()["request_count"])


def post(
    url: str, path: str, body: dict[str, Any], key: str = MASTER, **headers: str
) -> httpx.Response:
    headers["authorization"] = f"Bearer {key}"
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=30)


def question(text: str, **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], "temperature": 0, **fields}


# --- hit, miss, bypass --------------------------------------------------------------------


def test_a_repeat_is_a_hit_with_its_age_and_a_varied_request_a_bypass(replicas: Replicas) -> None:
    url = replicas.first
    before = upstream_calls(replicas)
    miss = post(url, "/v1/chat/completions", {"model": "smart", **question("hit me")})
    hit = post(url, "/v1/chat/completions", {"model": "smart", **question("hit me")})
    assert (miss.headers["x-modelway-cache"], hit.headers["x-modelway-cache"]) == ("miss", "hit")
    assert "age" not in miss.headers and int(hit.headers["age"]) >= 0
    assert hit.json() == miss.json()
    varied = {"model": "smart", **question("hit me"), "temperature": 1}
    assert post(url, "/v1/chat/completions", varied).headers["x-modelway-cache"] == "bypass"
    fresh = post(url, "/v1/chat/completions", {"model": "fresh", **question("hit me")})
    assert "x-modelway-cache" not in fresh.headers
    assert upstream_calls(replicas) == before + 3


def test_the_age_of_a_hit_grows(replicas: Replicas) -> None:
    body = {"model": "smart", **question("how old")}
    post(replicas.first, "/v1/chat/completions", body)
    wait_until(lambda: int(post(replicas.first, "/v1/chat/completions", body).headers["age"]) >= 1)


def test_an_answer_asked_through_one_replica_is_a_hit_on_the_other(replicas: Replicas) -> None:
    before = upstream_calls(replicas)
    body = {"model": "smart", **question("shared by replicas")}
    first = post(replicas.first, "/v1/chat/completions", body)
    second = post(replicas.second, "/v1/chat/completions", body)
    assert second.headers["x-modelway-cache"] == "hit"
    assert second.json() == first.json()
    assert upstream_calls(replicas) == before + 1


# --- identical requests at the same time: one upstream call -------------------------------


async def _five_at_once(url: str, text: str, *, stream: bool) -> list[tuple[str, str]]:
    """Five identical requests at once through the openai SDK: each one's cache header and
    answer text."""
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=MASTER, max_retries=0) as client:
        ask: dict[str, Any] = dict(
            model="slower", messages=[{"role": "user", "content": text}], temperature=0
        )

        async def whole() -> tuple[str, str]:
            raw = await client.chat.completions.with_raw_response.create(**ask)
            return raw.headers["x-modelway-cache"], raw.parse().choices[0].message.content or ""

        async def streamed() -> tuple[str, str]:
            async with client.chat.completions.with_streaming_response.create(
                **ask, stream=True
            ) as response:
                chunks = [chunk async for chunk in await response.parse()]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return response.headers["x-modelway-cache"], text

        return await asyncio.gather(*((streamed if stream else whole)() for _ in range(5)))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_five_identical_requests_at_once_reach_the_upstream_once(
    replicas: Replicas, stream: bool
) -> None:
    """The upstream takes 1.5 s to answer: the four that arrive meanwhile wait for the first
    (in this process: the Redis cache is shared, the waiting is not) and get its answer as
    a hit — a stream replayed as a stream once the first one ended."""
    before = upstream_calls(replicas)
    text = f"asked five times at once ({'streamed' if stream else 'whole'})"
    answers = asyncio.run(_five_at_once(replicas.first, text, stream=stream))
    assert upstream_calls(replicas) == before + 1
    assert sorted(cache for cache, _ in answers) == ["hit"] * 4 + ["miss"]
    assert {answer for _, answer in answers} == {text}


# --- every dialect, whole and streamed ----------------------------------------------------


def test_a_hit_replays_reasoning_and_tool_calls_in_openai_chat_whole_and_streamed(
    replicas: Replicas, request: pytest.FixtureRequest
) -> None:
    client = openai.OpenAI(base_url=f"{replicas.first}/v1", api_key=MASTER, max_retries=0)
    request.addfinalizer(client.close)
    ask = dict(
        model="claude",  # an Anthropic upstream that thinks, translated to OpenAI's format
        messages=[{"role": "user", "content": "call lookup"}],
        tools=TOOLS,
        temperature=0,
        reasoning_effort="low",
    )
    before = upstream_calls(replicas)
    miss = client.chat.completions.with_raw_response.create(**ask)  # type: ignore[call-overload]
    hit = client.chat.completions.with_raw_response.create(**ask)  # type: ignore[call-overload]
    assert hit.headers["x-modelway-cache"] == "hit"
    whole = hit.parse()
    assert whole.model_dump() == miss.parse().model_dump()
    message = whole.choices[0].message
    [call] = message.tool_calls
    reasoning = (message.model_extra or {}).get("reasoning_content")
    assert reasoning
    with client.chat.completions.with_streaming_response.create(**ask, stream=True) as streamed:
        assert streamed.headers["x-modelway-cache"] == "hit"
        chunks = list(streamed.parse())
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    names = [t.function.name for d in deltas for t in d.tool_calls or [] if t.function.name]
    arguments = "".join(t.function.arguments or "" for d in deltas for t in d.tool_calls or [])
    thought = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert names == [call.function.name] and json.loads(arguments) == json.loads(
        call.function.arguments
    )
    assert thought == reasoning
    assert upstream_calls(replicas) == before + 1


def test_a_hit_replays_thinking_and_tool_use_in_anthropic_whole_and_streamed(
    replicas: Replicas,
    request: pytest.FixtureRequest,
) -> None:
    client = anthropic.Anthropic(base_url=replicas.first, api_key=MASTER, max_retries=0)
    request.addfinalizer(client.close)
    ask: dict[str, Any] = dict(
        model="claude",
        max_tokens=2048,
        metadata={"user_id": "u1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[
            {
                "name": "lookup",
                "description": "Look a word up",
                "input_schema": TOOLS[0]["function"]["parameters"],
            }
        ],
        messages=[{"role": "user", "content": "call lookup"}],
    )
    # No temperature (thinking wants the default): not deterministic, so not cached; an
    # idempotency key keeps its answer all the same.
    headers = {"idempotency-key": "anthropic-thinking"}
    before = upstream_calls(replicas)
    miss = client.messages.with_raw_response.create(**ask, extra_headers=headers)
    hit = client.messages.with_raw_response.create(**ask, extra_headers=headers)
    assert (miss.headers["x-modelway-cache"], hit.headers["x-modelway-cache"]) == ("miss", "hit")
    whole = hit.parse()
    assert whole.model_dump() == miss.parse().model_dump()
    assert [block.type for block in whole.content] == ["thinking", "tool_use"]
    with client.messages.stream(**ask, extra_headers=headers) as stream:
        replayed = stream.get_final_message()
    assert replayed.model_dump(exclude={"usage"}) == whole.model_dump(exclude={"usage"})
    assert replayed.usage.output_tokens == whole.usage.output_tokens
    assert upstream_calls(replicas) == before + 1


def test_a_hit_replays_in_the_responses_api_whole_and_streamed(
    replicas: Replicas, request: pytest.FixtureRequest
) -> None:
    client = openai.OpenAI(base_url=f"{replicas.first}/v1", api_key=MASTER, max_retries=0)
    request.addfinalizer(client.close)
    ask: dict[str, Any] = dict(
        model="claude", input="answer from the cache", temperature=0, store=False
    )
    before = upstream_calls(replicas)
    miss = client.responses.with_raw_response.create(**ask)
    hit = client.responses.with_raw_response.create(**ask)
    assert hit.headers["x-modelway-cache"] == "hit"
    assert hit.parse().output_text == miss.parse().output_text == "answer from the cache"
    with client.responses.stream(**ask) as stream:
        replayed = stream.get_final_response()
    assert replayed.output_text == "answer from the cache"
    assert upstream_calls(replicas) == before + 1


def test_a_hit_replays_in_ollama_chat_and_generate_whole_and_streamed(
    replicas: Replicas, request: pytest.FixtureRequest
) -> None:
    client = ollama.Client(host=replicas.first, headers={"authorization": f"Bearer {MASTER}"})
    request.addfinalizer(client.close)
    before = upstream_calls(replicas)
    options = {"temperature": 0}
    messages = [{"role": "user", "content": "ollama asks"}]
    miss = client.chat(model="local", messages=messages, options=options)
    hit = client.chat(model="local", messages=messages, options=options)
    assert hit.message.content == miss.message.content == "ollama asks"
    streamed = "".join(
        part.message.content or ""
        for part in client.chat(model="local", messages=messages, options=options, stream=True)
    )
    assert streamed == "ollama asks"
    # /api/generate asks the same question, so it is the same entry.
    generated = client.generate(model="local", prompt="ollama asks", options=options)
    assert generated.response == "ollama asks"
    assert upstream_calls(replicas) == before + 1
    raw = post(
        replicas.first, "/api/chat", {"model": "local", "messages": messages, "options": options}
    )
    assert raw.headers["x-modelway-cache"] == "hit"


def test_an_openai_question_is_a_hit_for_the_same_question_through_anthropic(
    replicas: Replicas,
) -> None:
    before = upstream_calls(replicas)
    post(
        replicas.first,
        "/v1/chat/completions",
        {"model": "smart", **question("one entry", max_tokens=50)},
    )
    through_anthropic = post(
        replicas.first, "/v1/messages", {"model": "smart", **question("one entry", max_tokens=50)}
    )
    assert through_anthropic.headers["x-modelway-cache"] == "hit"
    assert through_anthropic.json()["content"][0]["text"] == "one entry"
    assert upstream_calls(replicas) == before + 1


# --- what is never stored -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "path"),
    [("truncated", "/v1/chat/completions"), ("truncated-anthropic", "/v1/messages")],
)
def test_a_truncated_stream_is_never_stored(replicas: Replicas, alias: str, path: str) -> None:
    before = upstream_calls(replicas)
    body = {"model": alias, "stream": True, **question("cut short", max_tokens=50)}
    for _ in range(2):
        answer = post(replicas.first, path, body)
        assert answer.headers["x-modelway-cache"] == "miss"
        assert "error" in answer.text  # the stream ended with an error event
    whole = post(replicas.first, path, {**body, "stream": False})
    assert whole.headers.get("x-modelway-cache") != "hit"
    assert upstream_calls(replicas) == before + 3


def test_a_stream_the_caller_left_is_never_stored(replicas: Replicas) -> None:
    body = {"model": "stalling", "stream": True, **question("left early")}
    headers = {"authorization": f"Bearer {MASTER}"}
    before = upstream_calls(replicas)
    url = f"{replicas.first}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as left:
        assert left.headers["x-modelway-cache"] == "miss"
        next(left.iter_bytes())  # the first chunk, then the caller hangs up mid-stall
    wait_until(lambda: httpx.get(f"{replicas.mock}/mock/stats").json()["open_streams"] == 0)
    finished = post(replicas.first, "/v1/chat/completions", body)
    assert finished.headers["x-modelway-cache"] == "miss"  # the first was not kept
    assert post(replicas.first, "/v1/chat/completions", body).headers["x-modelway-cache"] == "hit"
    assert upstream_calls(replicas) == before + 2


def test_errors_are_never_stored(replicas: Replicas) -> None:
    before = upstream_calls(replicas)
    for _ in range(2):
        answer = post(replicas.first, "/v1/chat/completions", {"model": "broken", **question("x")})
        assert answer.status_code == 502
    assert upstream_calls(replicas) == before + 2


# --- tenants ------------------------------------------------------------------------------


def test_two_teams_asking_the_same_never_share_an_answer(replicas: Replicas) -> None:
    _, red = create_key(replicas.first_env, owner_team="red")
    _, red_too = create_key(replicas.first_env, owner_team="red")
    _, blue = create_key(replicas.first_env, owner_team="blue")
    body = {"model": "smart", **question("same prompt, two teams")}
    before = upstream_calls(replicas)
    assert (
        post(replicas.first, "/v1/chat/completions", body, red).headers["x-modelway-cache"]
        == "miss"
    )
    assert (
        post(replicas.first, "/v1/chat/completions", body, blue).headers["x-modelway-cache"]
        == "miss"
    )
    assert (
        post(replicas.first, "/v1/chat/completions", body, red_too).headers["x-modelway-cache"]
        == "hit"
    )
    assert upstream_calls(replicas) == before + 2


# --- idempotency keys ---------------------------------------------------------------------


async def _concurrently(urls: list[str], body: dict[str, Any], key: str) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {MASTER}", "idempotency-key": key}
    async with httpx.AsyncClient(timeout=60) as http:
        return await asyncio.gather(
            *(http.post(f"{url}/v1/chat/completions", json=body, headers=headers) for url in urls)
        )


def test_twenty_concurrent_repeats_across_replicas_make_one_upstream_call(
    replicas: Replicas,
) -> None:
    body = {"model": "slow", "messages": [{"role": "user", "content": "charge the card"}]}
    urls = [replicas.first, replicas.second] * 10
    before = upstream_calls(replicas)
    answers = asyncio.run(_concurrently(urls, body, "payment-42"))
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.text for answer in answers}) == 1
    assert sorted(answer.headers["x-modelway-cache"] for answer in answers) == ["hit"] * 19 + [
        "miss"
    ]
    assert upstream_calls(replicas) == before + 1
    later = post(replicas.second, "/v1/chat/completions", body, **{"idempotency-key": "payment-42"})
    assert later.text == answers[0].text


def test_twenty_concurrent_streamed_repeats_get_one_answer(replicas: Replicas) -> None:
    body = {
        "model": "slow",
        "stream": True,
        "messages": [{"role": "user", "content": "stream it once"}],
    }
    before = upstream_calls(replicas)
    answers = asyncio.run(_concurrently([replicas.first] * 20, body, "stream-7"))
    texts = set()
    for answer in answers:
        assert answer.status_code == 200 and answer.text.rstrip().endswith("data: [DONE]")
        chunks = [
            json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: {")
        ]
        texts.add(
            "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        )
    assert texts == {"stream it once"}
    assert upstream_calls(replicas) == before + 1


def test_an_idempotency_key_sent_again_with_another_body_is_a_422(
    replicas: Replicas, request: pytest.FixtureRequest
) -> None:
    client = anthropic.Anthropic(base_url=replicas.second, api_key=MASTER, max_retries=0)
    request.addfinalizer(client.close)
    headers = {"idempotency-key": "order-9"}
    client.messages.create(
        model="smart",
        max_tokens=20,
        messages=[{"role": "user", "content": "first"}],
        extra_headers=headers,
    )
    with pytest.raises(anthropic.UnprocessableEntityError) as refused:
        client.messages.create(
            model="smart",
            max_tokens=20,
            messages=[{"role": "user", "content": "second"}],
            extra_headers=headers,
        )
    assert "Idempotency-Key" in refused.value.message


# --- admin --------------------------------------------------------------------------------


def test_the_admin_api_shows_and_clears_the_shared_cache(replicas: Replicas) -> None:
    body = {"model": "smart", **question("to be cleared")}
    post(replicas.first, "/v1/chat/completions", body)
    admin = {"authorization": f"Bearer {MASTER}"}
    stats = httpx.get(f"{replicas.second}/admin/api/cache", headers=admin).json()
    assert stats["backend"] == "redis" and stats["entries"] >= 1
    for namespace, removed in (("team:none", None), ("*", None), ("shared", 0)):
        other = httpx.delete(
            f"{replicas.second}/admin/api/cache", params={"namespace": namespace}, headers=admin
        )
        if removed is None:  # no such team, and not a namespace at all: refused
            assert other.status_code == 400 and "namespace: " in other.json()["error"]["message"]
        else:
            assert other.json()["removed"] == removed
    assert post(replicas.first, "/v1/chat/completions", body).headers["x-modelway-cache"] == "hit"
    cleared = httpx.delete(f"{replicas.second}/admin/api/cache", headers=admin).json()
    assert cleared["removed"] >= 1
    assert post(replicas.first, "/v1/chat/completions", body).headers["x-modelway-cache"] == "miss"
    anonymous = httpx.get(f"{replicas.first}/admin/api/cache")
    assert anonymous.status_code == 401


def test_the_cli_shows_and_clears_a_gateways_cache(replicas: Replicas) -> None:
    post(replicas.first, "/v1/chat/completions", {"model": "smart", **question("via the cli")})
    command = [sys.executable, "-m", "modelway.cli", "cache"]
    target = ["--url", replicas.first, "--key", MASTER]
    stats = subprocess.run(
        [*command, "stats", "--json", *target], capture_output=True, text=True, check=True
    )
    assert json.loads(stats.stdout)["backend"] == "redis"
    for namespace in ("", "*"):  # refused, not taken for the whole cache
        refused = subprocess.run(
            [*command, "clear", "--namespace", namespace, *target], capture_output=True, text=True
        )
        assert refused.returncode == 1 and "error: namespace: " in refused.stderr
    kept = post(
        replicas.first, "/v1/chat/completions", {"model": "smart", **question("via the cli")}
    )
    assert kept.headers["x-modelway-cache"] == "hit"
    cleared = subprocess.run(
        [*command, "clear", "--namespace", "master", *target],
        capture_output=True,
        text=True,
        check=True,
    )
    assert cleared.stdout.startswith("removed ") and "from master" in cleared.stdout
    again = post(
        replicas.first, "/v1/chat/completions", {"model": "smart", **question("via the cli")}
    )
    assert again.headers["x-modelway-cache"] == "miss"
    refused = subprocess.run(
        [*command, "stats", "--url", replicas.first, "--key", "wrong"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "error:" in refused.stderr


# --- bodies the cache would answer differently: past it, relayed as they came -------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "smart", **question("two of them"), "n": 2}),
        ("/v1/chat/completions", {"model": "smart", **question("odds"), "logprobs": True}),
        (
            "/v1/messages",
            {"model": "claude", "max_tokens": 50, "temperature": 0, "top_k": 1,
             "messages": [{"role": "user", "content": "top k"}]},
        ),
        (
            "/v1/messages",
            {"model": "claude", "max_tokens": 50, "temperature": 0,
             "system": [{"type": "text", "text": "long rules",
                         "cache_control": {"type": "ephemeral"}}],
             "messages": [{"role": "user", "content": "prompt caching"}]},
        ),
        (
            "/api/chat",
            {"model": "local", "stream": False, "options": {"temperature": 0, "seed": 7},
             "messages": [{"role": "user", "content": "seeded"}]},
        ),
    ],
)  # fmt: skip
def test_a_body_asking_what_translation_drops_goes_past_the_cache(
    replicas: Replicas, path: str, body: dict[str, Any]
) -> None:
    """The cache keeps canonical answers, so a cached call is translated even to a
    provider of the caller's own format: ``n``, log probabilities, ``top_k``, prompt-cache
    breakpoints, Ollama's other options would be lost, and bodies differing only there
    would share an entry. Such a body is relayed as it came, and not cached."""
    before = upstream_calls(replicas)
    first = post(replicas.first, path, body)
    again = post(replicas.first, path, body)
    assert first.status_code == again.status_code == 200, first.text
    assert first.headers["x-modelway-cache"] == again.headers["x-modelway-cache"] == "bypass"
    assert upstream_calls(replicas) == before + 2
