"""The control plane on the request path, against real processes: keys (master, virtual,
wrong, expired, revoked), allowed models, RPM limits, budgets and usage records — on
SQLite, and on PostgreSQL + Redis shared by two gateway replicas.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from modelway.store import Store, database_url
from modelway.store.records import UsageRecord
from tests.integration.gateway import running_gateway
from tests.polling import wait_until
from tests.postgres import running_postgres
from tests.redis_server import restartable_redis, running_redis

MASTER = "master-test-key-0123456789"
HELLO = [{"role": "user", "content": "hello there"}]


def store_call(environ: dict[str, str], work: Callable[[Store], Any]) -> Any:
    """Run ``work(store)`` against the gateway's store, as an operator's script would."""

    async def run() -> Any:
        store = await Store.open(database_url(environ))
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def create_key(environ: dict[str, str], **settings: Any) -> tuple[str, str]:
    record, key = store_call(environ, lambda s: s.keys.create("test", **settings))
    return record.id, key


def chat(url: str, key: str | None, model: str = "mock/echo") -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": HELLO},
        headers=headers,
        timeout=30,
    )


@pytest.fixture(scope="module")
def data_env() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory() as data:
        yield {"MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER}


@pytest.fixture(scope="module")
def gateway(data_env: dict[str, str]) -> Iterator[str]:
    with running_gateway(data_env) as url:
        yield url


def test_a_request_without_a_key_is_refused_in_each_callers_dialect(gateway: str) -> None:
    response = chat(gateway, None)
    assert response.status_code == 401
    assert "missing API key" in response.json()["error"]["message"]
    with (
        anthropic.Anthropic(base_url=gateway, api_key="wrong") as sdk,
        pytest.raises(anthropic.AuthenticationError) as caught,
    ):
        sdk.messages.create(
            model="mock/echo", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    ollama_style = httpx.post(f"{gateway}/api/chat", json={"model": "mock/echo"})
    assert ollama_style.status_code == 401
    assert isinstance(ollama_style.json()["error"], str)


def test_the_master_key_and_a_virtual_key_may_call(gateway: str, data_env: dict[str, str]) -> None:
    assert chat(gateway, MASTER).status_code == 200
    _, key = create_key(data_env)
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=key) as client:
        reply = client.chat.completions.create(model="mock/echo", messages=HELLO)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "hello there"
    # The Anthropic SDK sends its key as x-api-key.
    with anthropic.Anthropic(base_url=gateway, api_key=key) as sdk:
        message = sdk.messages.create(
            model="mock/echo", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.content[0].text == "hi"  # type: ignore[union-attr]


def test_wrong_expired_and_revoked_keys_are_refused_with_clear_messages(
    gateway: str, data_env: dict[str, str]
) -> None:
    wrong = chat(gateway, "mw-not-a-real-key-00000000000000000000000000")
    assert wrong.status_code == 401
    _, expired = create_key(data_env, expires_at=time.time() - 1)
    refused = chat(gateway, expired)
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]
    key_id, key = create_key(data_env)
    assert chat(gateway, key).status_code == 200
    store_call(data_env, lambda s: s.keys.revoke(key_id))
    # Revoked by another process (the CLI, another replica): refused within 5 seconds.
    wait_until(lambda: chat(gateway, key).status_code == 401, within=6.0)
    for response in (wrong, refused):
        assert "mw-" not in response.text  # never echoes a key


def test_a_key_may_only_use_its_allowed_models(gateway: str, data_env: dict[str, str]) -> None:
    _, key = create_key(data_env, models=["mock/*"])
    assert chat(gateway, key, "mock/echo").status_code == 200
    denied = chat(gateway, key, "openai/gpt-4o")
    assert denied.status_code == 403
    assert "may not use model 'openai/gpt-4o'" in denied.json()["error"]["message"]
    # A key's listings offer what it may use (the web chat's model picker reads them).
    _, echo_only = create_key(data_env, models=["mock/echo"])
    as_key = {"authorization": f"Bearer {echo_only}"}
    listed = httpx.get(f"{gateway}/v1/models", headers=as_key, timeout=10).json()["data"]
    assert [m["id"] for m in listed] == ["mock/echo"]
    tags = httpx.get(f"{gateway}/api/tags", headers=as_key, timeout=10).json()["models"]
    assert [m["name"] for m in tags] == ["mock/echo"]
    one = httpx.get(f"{gateway}/v1/models/mock/mock-1", headers=as_key, timeout=10)
    assert one.status_code == 404
    everything = httpx.get(f"{gateway}/v1/models", headers={"authorization": f"Bearer {MASTER}"})
    assert len(everything.json()["data"]) > 1


def test_rpm_limit_refuses_with_retry_after_and_headers_on_every_answer(
    gateway: str, data_env: dict[str, str]
) -> None:
    _, key = create_key(data_env, rpm=2)
    first = chat(gateway, key)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert chat(gateway, key).status_code == 200
    refused = chat(gateway, key)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.json()["error"]["type"] == "rate_limit_error"


def test_an_exhausted_budget_is_a_429_budget_exceeded(
    gateway: str, data_env: dict[str, str]
) -> None:
    _, key = create_key(data_env, budget_tokens=3, budget_period="day")
    assert chat(gateway, key).status_code == 200  # spends 4 tokens
    refused = chat(gateway, key)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"


def test_every_request_leaves_one_usage_record(gateway: str, data_env: dict[str, str]) -> None:
    key_id, key = create_key(data_env)
    ok = chat(gateway, key)
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={"model": "mock/echo", "messages": HELLO, "stream": True},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ) as streamed:
        streamed.read()
    failed = chat(gateway, key, "nobody/knows-this")

    def records() -> list[UsageRecord]:
        return store_call(data_env, lambda s: s.usage.recent(limit=10, key_id=key_id))  # type: ignore[no-any-return]

    wait_until(lambda: len(records()) == 3)
    by_id = {r.request_id: r for r in records()}
    plain = by_id[ok.headers["x-request-id"]]
    assert (plain.status, plain.provider, plain.model) == (200, "mock", "echo")
    assert plain.prompt_tokens > 0 and plain.completion_tokens == 2
    assert plain.usage_estimated is False and plain.stream is False
    assert plain.latency_ms > 0
    stream = by_id[streamed.headers["x-request-id"]]
    assert stream.stream is True and stream.ttft_ms is not None and stream.completion_tokens == 2
    refused = by_id[failed.headers["x-request-id"]]
    assert refused.status == 404 and refused.error_type == "UnknownModel"


def test_two_replicas_on_postgres_and_redis_enforce_one_global_limit_and_revocation() -> None:
    with (
        running_postgres() as postgres,
        running_redis() as redis_url,
        tempfile.TemporaryDirectory() as data,
    ):
        env = {
            "DATABASE_URL": postgres.url,
            "REDIS_URL": redis_url,
            "MODELWAY_MASTER_KEY": MASTER,
            "MODELWAY_DATA_DIR": data,
        }
        key_id, key = create_key(env, rpm=5)
        with running_gateway(env) as first, running_gateway(env) as second:
            statuses = [chat(url, key).status_code for url in [first, second] * 4]
            assert statuses.count(200) == 5  # five in total, not five per replica
            assert statuses.count(429) == 3
            spare_id, spare = create_key(env)
            assert chat(first, spare).status_code == 200 and chat(second, spare).status_code == 200
            store_call(env, lambda s: s.keys.revoke(spare_id))
            wait_until(
                lambda: (
                    chat(first, spare).status_code == 401 and chat(second, spare).status_code == 401
                ),
                within=6.0,
            )
        # Both replicas flushed their records on shutdown: every request is on file.
        records = store_call(env, lambda s: s.usage.recent(limit=50, key_id=key_id))
        assert len(records) == 8
        assert sorted(r.status for r in records) == [200] * 5 + [429] * 3
        assert Path(env["MODELWAY_DATA_DIR"]).exists()


def test_a_budget_in_redis_is_refilled_from_the_store_when_redis_lost_it() -> None:
    """The store is the ledger of record: a Redis flushed between two runs, or restarted
    empty under a running gateway, does not let a spent budget start over."""
    with restartable_redis() as redis, tempfile.TemporaryDirectory() as data:
        env = {"MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER, "REDIS_URL": redis.url}
        _, key = create_key(env, budget_tokens=10, budget_period="day")  # a call spends 4
        with running_gateway(env) as url:
            assert [chat(url, key).status_code for _ in range(4)] == [200, 200, 200, 429]
        redis.stop()
        redis.start()  # no persistence: every budget window is gone
        with running_gateway(env) as url:
            assert chat(url, key).status_code == 429  # seeded from the 12 tokens on file
            redis.stop()
            redis.start()  # empty again, under the running gateway
            statuses: list[int] = []

            def refused() -> bool:
                statuses.append(chat(url, key).status_code)
                return statuses[-1] == 429

            wait_until(refused, within=15.0)
            # One call may pass unchecked if it met Redis down (budgets fail open); an
            # empty window counted afresh would have let two more in (4 and 8 of 10).
            assert statuses.count(200) <= 1, statuses


def test_the_web_chat_api_goes_through_the_same_keys_limits_and_usage_records(
    gateway: str, data_env: dict[str, str]
) -> None:
    key_id, key = create_key(data_env, rpm=1, models=["mock/*"])
    headers = {"authorization": f"Bearer {key}"}
    assert httpx.get(f"{gateway}/chat/api/sessions", timeout=10).status_code == 401
    session = httpx.post(
        f"{gateway}/chat/api/sessions", json={"model": "mock/echo"}, headers=headers, timeout=10
    ).json()

    def send(model: str = "mock/echo") -> str:
        return httpx.post(
            f"{gateway}/chat/api/sessions/{session['id']}/messages",
            json={"content": "hi from the page", "model": model},
            headers=headers,
            timeout=30,
        ).text

    assert '"type":"delta"' in send().replace(" ", "")
    assert '"type":"rate_limited"' in send().replace(" ", "")  # rpm 1
    records: list[UsageRecord] = []

    def recorded() -> bool:
        records[:] = store_call(data_env, lambda s: s.usage.recent(limit=10, key_id=key_id))
        return len(records) == 2

    wait_until(recorded)
    assert {r.dialect for r in records} == {"chat"}
    assert sorted(r.status for r in records) == [200, 429]
    # Connecting providers is the operator's business.
    refused = httpx.post(
        f"{gateway}/chat/api/connections", json={"provider": "groq"}, headers=headers
    )
    assert refused.status_code == 403


def test_a_team_budget_is_shared_by_every_key_of_the_team() -> None:
    config = "budgets:\n  - {team: red, tokens: 6, period: day}\n"
    with tempfile.TemporaryDirectory() as data:
        env = {"MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER}
        _, first = create_key(env, owner_team="red")
        _, second = create_key(env, owner_team="red")
        _, other_team = create_key(env, owner_team="blue")
        with running_gateway(env, config) as url:
            assert chat(url, first).status_code == 200  # 4 tokens
            assert chat(url, second).status_code == 200  # 8 tokens: the day's 6 are spent
            refused = chat(url, first)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "budget_exceeded"
            assert chat(url, other_team).status_code == 200


def test_embeddings_go_through_the_same_keys_limits_and_usage_records(
    gateway: str, data_env: dict[str, str]
) -> None:
    # As reported: a key for mock/echo at 1 rpm could embed with any model, unrecorded.
    key_id, key = create_key(data_env, models=["mock/echo"], rpm=1)
    headers = {"authorization": f"Bearer {key}"}

    def embed(path: str, model: str) -> httpx.Response:
        body = {"model": model, "input": ["one", "two"]}
        return httpx.post(f"{gateway}{path}", json=body, headers=headers, timeout=30)

    assert [embed("/v1/embeddings", "mock/other").status_code for _ in range(3)] == [403] * 3
    assert embed("/api/embed", "mock/other").json() == {
        "error": "this key may not use model 'mock/other'"
    }
    assert embed("/v1/embeddings", "mock/echo").status_code == 200
    assert embed("/api/embed", "mock/echo").status_code == 429  # the minute's one request

    def recorded() -> list[UsageRecord] | None:
        found = store_call(data_env, lambda s: s.usage.recent(limit=10, key_id=key_id))
        return found if len(found) == 6 else None

    found = wait_until(recorded)
    assert sorted(r.status for r in found) == [200, 403, 403, 403, 403, 429]
    assert {r.dialect for r in found} == {"openai", "ollama"}
