"""Responses relayed to a provider that keeps them (OpenAI, Azure), read back through a
real ``modelway serve`` with the ``openai`` SDK (``gateway.relayed_responses``).

``modelway mock`` is the OpenAI and Azure upstream: it keeps its Responses answers as
OpenAI does (``mock.kept_responses``), so every read below went to it and back.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from modelway.calls.caller import ANONYMOUS
from modelway.config.schema import Timeouts
from modelway.errors import ModelwayError
from modelway.gateway.relayed_responses import forwarded, upstream_of
from modelway.providers.openai import OpenAIAdapter
from modelway.providers.upstream import HttpProvider
from modelway.store.records import UsageRecord
from tests.integration.conftest import FAULTY_ALIASES
from tests.integration.gateway import running_gateway
from tests.integration.mockserver import running_mock
from tests.integration.test_keys_pipeline import MASTER, create_key, store_call
from tests.polling import wait_until

RELAYING = ["openai", "azure"]


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


def upstream_calls(mock_url: str, path_part: str) -> int:
    """Requests the mock upstream took whose path holds ``path_part``."""
    stats = httpx.get(f"{mock_url}/mock/stats").json()
    return sum(n for path, n in stats["requests"].items() if path_part in path)


@pytest.mark.parametrize("provider", RELAYING)
def test_a_relayed_answer_is_read_listed_and_deleted_through_the_gateway(
    client: openai.OpenAI, provider: str
) -> None:
    made = client.responses.create(model=f"{provider}/echo", input="keep this one")
    assert not made.id.startswith("resp_mw")  # the upstream's own id: it was relayed
    read = client.responses.retrieve(made.id)
    assert (read.id, read.output_text) == (made.id, "keep this one")
    items = client.responses.input_items.list(made.id).data
    assert [(item.type, item.content[0].text) for item in items] == [("message", "keep this one")]
    deleted = client.responses.delete(made.id)
    assert deleted is None  # the SDK returns nothing for a 200
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(made.id)


@pytest.mark.parametrize("provider", RELAYING)
def test_a_relayed_stream_can_be_read_back_and_streamed_again(
    client: openai.OpenAI, provider: str
) -> None:
    with client.responses.stream(model=f"{provider}/echo", input="streamed and kept") as stream:
        final = stream.get_final_response()
    assert client.responses.retrieve(final.id).output_text == "streamed and kept"
    # ``stream=true`` on a read (how a background response is followed) is passed on too.
    events = list(client.responses.retrieve(final.id, stream=True))
    assert [event.type for event in events] == ["response.completed"]
    assert events[0].response.output_text == "streamed and kept"  # type: ignore[union-attr]


def test_cancel_is_answered_by_the_provider(client: openai.OpenAI) -> None:
    made = client.responses.create(model="openai/echo", input="already done")
    with pytest.raises(openai.BadRequestError, match="background"):
        client.responses.cancel(made.id)
    # The gateway's own answers are never in the background either.
    own = client.responses.create(model="anthropic/echo", input="mine")
    with pytest.raises(openai.BadRequestError, match="background"):
        client.responses.cancel(own.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_mw" + "0" * 32)


def test_store_false_is_not_remembered_and_its_id_never_reaches_the_provider(
    client: openai.OpenAI, mock_url: str
) -> None:
    made = client.responses.create(model="openai/echo", input="forget me", store=False)
    before = upstream_calls(mock_url, made.id)
    for read in (client.responses.retrieve, client.responses.delete, client.responses.cancel):
        with pytest.raises(openai.NotFoundError):
            read(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(made.id)
    assert upstream_calls(mock_url, made.id) == before == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    response_id=st.text(min_size=1, max_size=300).filter(lambda s: s not in (".", "..")),
    how=st.sampled_from(["GET", "DELETE", "POST", "items"]),
)
@example(response_id="/", how="GET")
@example(response_id="a/", how="DELETE")
@example(response_id="a/", how="POST")
@example(response_id="a/", how="items")
@example(response_id="a/b", how="GET")
@example(response_id="%", how="GET")
@example(response_id="é" * 200, how="DELETE")
def test_any_id_is_a_clear_error_in_openais_shape(
    gateway_url: str, response_id: str, how: str
) -> None:
    path = f"{gateway_url}/v1/responses/{quote(response_id, safe='')}"
    method = "GET" if how == "items" else how
    if how == "items":
        path += "/input_items"
    elif how == "POST":
        path += "/cancel"
    answer = httpx.request(method, path, headers={"authorization": "Bearer x"})
    assert answer.status_code in (400, 404, 405), answer.text
    if answer.status_code != 405:
        assert isinstance(answer.json()["error"]["message"], str)


def test_a_relayed_answer_is_its_creators_alone(
    gateway_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, mock_url: str
) -> None:
    data = str(tmp_path_factory.mktemp("relayed-keys"))
    env = {**gateway_env, "MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER}
    store_env = {"MODELWAY_DATA_DIR": data}
    _, alice = create_key(store_env)
    _, bob = create_key(store_env)
    _, red_one = create_key(store_env, owner_team="red")
    _, red_two = create_key(store_env, owner_team="red")
    with running_gateway(env) as url, contextlib.ExitStack() as clients:

        def sdk(key: str) -> openai.OpenAI:
            return clients.enter_context(
                openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            )

        made = sdk(alice).responses.create(model="openai/echo", input="alice's")
        asked = upstream_calls(mock_url, made.id)
        for other in (bob, MASTER, red_one):
            with pytest.raises(openai.NotFoundError):
                sdk(other).responses.retrieve(made.id)
            with pytest.raises(openai.NotFoundError):
                sdk(other).responses.delete(made.id)
            with pytest.raises(openai.NotFoundError):
                sdk(other).responses.input_items.list(made.id)
        assert upstream_calls(mock_url, made.id) == asked  # none of it reached the provider
        assert sdk(alice).responses.retrieve(made.id).output_text == "alice's"
        # Nor can another key continue it: the provider would, with the gateway's key.
        for other in (bob, MASTER):
            with pytest.raises(openai.NotFoundError, match="previous_response_id"):
                sdk(other).responses.create(
                    model="openai/echo", input="x", previous_response_id=made.id
                )
        chained = sdk(alice).responses.create(
            model="openai/echo", input="mine too", previous_response_id=made.id
        )
        assert chained.output_text == "mine too"
        # A team's keys share their team's responses.
        ours = sdk(red_one).responses.create(model="openai/echo", input="ours")
        assert sdk(red_two).responses.retrieve(ours.id).output_text == "ours"
        refused = httpx.get(f"{url}/v1/responses/{ours.id}")
        assert refused.status_code == 401


def test_reading_a_response_back_counts_against_the_keys_rpm(
    gateway_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, mock_url: str
) -> None:
    # Each read of a relayed response is a request to the provider on the gateway's key;
    # a key's RPM bounds it as it bounds calls, and a kept answer's read alike.
    data = str(tmp_path_factory.mktemp("relayed-rpm"))
    env = {**gateway_env, "MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER}
    _, key = create_key({"MODELWAY_DATA_DIR": data}, rpm=4)
    with (
        running_gateway(env) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as sdk,
    ):
        relayed = sdk.responses.create(model="openai/echo", input="relayed")
        kept = sdk.responses.create(model="anthropic/echo", input="kept")
        read = sdk.responses.with_raw_response.retrieve(relayed.id)
        assert read.headers["x-ratelimit-remaining-requests"] == "1"
        assert read.parse().output_text == "relayed"
        read = sdk.responses.with_raw_response.retrieve(kept.id)
        assert read.headers["x-ratelimit-limit-requests"] == "4"
        assert read.headers["x-ratelimit-remaining-requests"] == "0"
        asked = upstream_calls(mock_url, relayed.id)
        for refused_read in (
            lambda: sdk.responses.input_items.list(relayed.id),
            lambda: sdk.responses.delete(relayed.id),
            lambda: sdk.responses.retrieve(kept.id),
        ):
            with pytest.raises(openai.RateLimitError) as caught:
                refused_read()
            error = caught.value
            assert error.code == "rate_limit_exceeded" and "requests per minute" in error.message
            assert float(error.response.headers["retry-after"]) > 0
        assert upstream_calls(mock_url, relayed.id) == asked  # refused before the provider


@pytest.fixture(scope="module")
def gateway_env(mock_url: str) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": f"{mock_url}/v1",
        "OPENAI_API_KEY": "sk-test-openai-key",
        "ANTHROPIC_BASE_URL": mock_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
    }


def test_a_query_string_is_passed_on_within_its_bound(
    client: openai.OpenAI, gateway_url: str
) -> None:
    made = client.responses.create(model="openai/echo", input="query me")
    url = f"{gateway_url}/v1/responses/{made.id}"
    auth = {"authorization": "Bearer x"}
    fine = httpx.get(url, params={"include[]": "message.output_text.logprobs"}, headers=auth)
    assert fine.status_code == 200 and fine.json()["id"] == made.id
    long = httpx.get(url, params={"x": "y" * 5000}, headers=auth)
    assert long.status_code == 400 and "query string" in long.json()["error"]["message"]


def test_a_deployment_with_its_own_base_url_is_read_back_there(
    gateway_env: dict[str, str], mock_url: str
) -> None:
    with running_mock() as other_url:
        config = (
            "models:\n  - name: eu-gpt\n    deployments:\n"
            f'      - {{provider: openai, model: echo, base_url: "{other_url}/v1", '
            "api_key: sk-eu-deployment-key}\n"
        )
        with (
            running_gateway(gateway_env, config) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk,
        ):
            made = sdk.responses.create(model="eu-gpt", input="kept in the EU")
            assert sdk.responses.retrieve(made.id).output_text == "kept in the EU"
            sdk.responses.delete(made.id)
            with pytest.raises(openai.NotFoundError):
                sdk.responses.retrieve(made.id)
        # The read and the deletion went where the answer was made, never to the provider's
        # own base URL.
        assert upstream_calls(other_url, made.id) == 2
        assert upstream_calls(mock_url, made.id) == 0


def raw_status(url: str, target: str) -> int:
    """The status of ``GET target`` sent byte for byte (no client re-encodes it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer x\r\n"
        connection.sendall((head + "Connection: close\r\n\r\n").encode())
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_a_query_that_is_not_ascii_is_refused_where_it_would_be_passed_on(
    client: openai.OpenAI, gateway_url: str
) -> None:
    made = client.responses.create(model="openai/echo", input="query me")
    for query in ("a=é", "a=€", "a=%C3%A9"):
        assert raw_status(gateway_url, f"/v1/models?{query}") == 200
    for query in ("a=é", "a=€"):
        assert raw_status(gateway_url, f"/v1/responses/{made.id}?{query}") == 400
    assert raw_status(gateway_url, f"/v1/responses/{made.id}?a=%C3%A9") == 200


def test_a_read_streams_when_the_upstream_streams(client: openai.OpenAI, gateway_url: str) -> None:
    # ``stream=%74rue`` is ``stream=true`` to the upstream: what it sends decides.
    made = client.responses.create(model="openai/echo", input="stream me back")
    answer = httpx.get(
        f"{gateway_url}/v1/responses/{made.id}?stream=%74rue", headers={"authorization": "x"}
    )
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert b"event: response.completed" in answer.content and b"stream me back" in answer.content


class Responses:
    """The store's relayed-response rows as a test wants them: one known, forgetting fails."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

    async def relayed_upstream(self, response_id: str, owner: str) -> str:
        return self.upstream

    async def forget_relayed(self, response_id: str, owner: str) -> None:
        raise ConnectionRefusedError("database down")


def forwarding_state(backend: HttpProvider, timeouts: Timeouts) -> Any:
    """What ``forwarded`` reads of a gateway: one row naming ``backend``, the router that
    has it, the time allowed."""

    async def reading(query: Any) -> Any:
        return await query

    return SimpleNamespace(
        store=SimpleNamespace(responses=Responses(upstream_of(backend)), reading=reading),
        engine=SimpleNamespace(router=SimpleNamespace(backends={"openai": backend})),
        config=SimpleNamespace(server=SimpleNamespace(timeouts=timeouts)),
    )


async def test_a_deletion_the_upstream_made_is_answered_though_the_store_cannot_forget_it(
    mock_url: str,
) -> None:
    async with httpx.AsyncClient() as http:
        made = (
            await http.post(f"{mock_url}/v1/responses", json={"model": "echo", "input": "gone"})
        ).json()
    backend = HttpProvider("openai", OpenAIAdapter(), f"{mock_url}/v1", None)

    state = forwarding_state(backend, Timeouts())
    try:
        answer = await forwarded(state, ANONYMOUS, made["id"], method="DELETE")
    finally:
        await backend.aclose()
    assert answer.status_code == 200 and b'"deleted":true' in answer.body
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{mock_url}/v1/responses/{made['id']}")).status_code == 404


def test_a_background_response_is_polled_through_the_gateway_until_done(
    client: openai.OpenAI,
) -> None:
    made = client.responses.create(model="background-short", input="done later", background=True)
    assert made.status == "queued" and made.output_text == ""
    seen = {made.status}
    deadline = time.monotonic() + 30
    read = made
    while read.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)
        read = client.responses.retrieve(made.id)
        seen.add(read.status)
    assert read.status == "completed" and read.output_text == "done later"
    assert seen <= {"queued", "in_progress", "completed"}
    with pytest.raises(openai.BadRequestError, match="completed"):
        client.responses.cancel(made.id)


def test_a_background_response_is_cancelled_through_the_gateway(client: openai.OpenAI) -> None:
    made = client.responses.create(model="background-long", input="never mind", background=True)
    cancelled = client.responses.cancel(made.id)
    assert (cancelled.id, cancelled.status) == (made.id, "cancelled")
    assert client.responses.retrieve(made.id).status == "cancelled"
    assert client.responses.cancel(made.id).status == "cancelled"  # again: the same answer


def test_a_running_background_response_read_as_a_stream_is_followed_to_its_end(
    client: openai.OpenAI,
) -> None:
    made = client.responses.create(model="background-short", input="wait for me", background=True)
    events = list(client.responses.retrieve(made.id, stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "wait for me"  # type: ignore[union-attr]


def test_a_background_response_is_charged_what_it_spent_when_it_ends(
    gateway_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Answered "queued" with no usage: the call ends when the response does, read by the
    # gateway itself (nobody polls here), and its record and budget get the real tokens.
    data = str(tmp_path_factory.mktemp("background-usage"))
    env = {**gateway_env, "MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER}
    store_env = {"MODELWAY_DATA_DIR": data}
    key_id, key = create_key(store_env, budget_tokens=100_000)
    words = "word " * 300
    with (
        running_gateway(env, FAULTY_ALIASES) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as sdk,
    ):
        made = sdk.responses.create(model="background-short", input=words, background=True)
        assert made.status == "queued" and made.usage is None

        def ended() -> UsageRecord | None:
            records = store_call(store_env, lambda s: s.usage.recent(limit=5))
            return next((r for r in records if r.key_id == key_id), None)

        record = wait_until(ended, every=0.2)
        done = sdk.responses.retrieve(made.id)
    assert done.status == "completed" and done.usage is not None
    assert not record.usage_estimated
    assert (record.prompt_tokens, record.completion_tokens) == (
        done.usage.input_tokens,
        done.usage.output_tokens,
    )
    assert record.completion_tokens > 0


def test_a_background_response_still_running_at_shutdown_is_recorded_estimated(
    gateway_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = str(tmp_path_factory.mktemp("background-shutdown"))
    env = {**gateway_env, "MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER}
    store_env = {"MODELWAY_DATA_DIR": data}
    key_id, key = create_key(store_env)
    with (
        running_gateway(env, FAULTY_ALIASES) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as sdk,
    ):
        made = sdk.responses.create(model="background-long", input="still going", background=True)
        assert made.status == "queued"
        records = store_call(store_env, lambda s: s.usage.recent(limit=5))
        assert [r for r in records if r.key_id == key_id] == []  # not over yet
    # The gateway stopped: the call ended with what it knew, and nothing was lost.
    records = store_call(store_env, lambda s: s.usage.recent(limit=5))
    (record,) = [r for r in records if r.key_id == key_id]
    assert record.status == 200 and record.usage_estimated and record.prompt_tokens > 0


def test_the_upstreams_own_words_on_a_bad_page_reach_the_caller(client: openai.OpenAI) -> None:
    made = client.responses.create(model="openai/echo", input="page me", instructions="be nice")
    assert made.instructions == "be nice"  # the upstream echoes them, as OpenAI does
    for bad, field in (
        ({"limit": 0}, "limit"),
        ({"order": "up"}, "order"),
        ({"after": "x"}, "after"),
    ):
        with pytest.raises(openai.BadRequestError, match=f"openai answered 400: {field}:"):
            client.responses.input_items.list(made.id, **bad)  # type: ignore[arg-type]


def test_background_without_store_is_refused_by_the_upstream(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="store"):
        client.responses.create(model="openai/echo", input="x", background=True, store=False)


@pytest.mark.parametrize("sends", [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"])
async def test_an_upstream_that_goes_quiet_on_a_read_is_a_504(sends: bytes) -> None:
    # Silent before its head, or halfway through its body: the total time bounds both.
    done = asyncio.Event()
    handlers: list[asyncio.Task[None]] = []

    async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await reader.readuntil(b"\r\n\r\n")
        writer.write(sends)
        await done.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(quiet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = HttpProvider("openai", OpenAIAdapter(), f"http://127.0.0.1:{port}/v1", None)

    state = forwarding_state(backend, Timeouts(total=0.3))
    try:
        with pytest.raises(ModelwayError) as waited:
            await forwarded(state, ANONYMOUS, "resp_quiet", method="GET")
    finally:
        await backend.aclose()
        done.set()
        await asyncio.gather(*handlers, return_exceptions=True)
        server.close()
        await server.wait_closed()
    assert waited.value.status == 504
