"""A provider's key never reaches a caller, not even inside an error event mid-stream."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.config import ProviderSettings, parse_config
from modelway.errors import StreamTruncated, UndecodableResponse, UpstreamStatusError
from modelway.gateway.app import create_app
from modelway.gateway.state import GatewayState
from modelway.providers.redaction import StreamRedactor, redactor_for
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import Call, HttpProvider
from modelway.secrets import Secret
from modelway.types import ChatRequest, Message, TextPart

KEY = "sk-live-0123456789abcdefghijklmnop"


def _redacted(chunks: list[bytes]) -> bytes:
    redactor = StreamRedactor(KEY)
    return b"".join([redactor.feed(chunk) for chunk in chunks]) + redactor.close()


@given(
    before=st.binary(max_size=60),
    after=st.binary(max_size=60),
    cuts=st.lists(st.integers(0, 200), max_size=6),
)
def test_a_key_split_anywhere_across_chunks_is_replaced(
    before: bytes, after: bytes, cuts: list[int]
) -> None:
    whole = before + KEY.encode() + after
    bounds = sorted({0, len(whole), *(c for c in cuts if c < len(whole))})
    chunks = [whole[a:b] for a, b in itertools.pairwise(bounds)]
    out = _redacted(chunks)
    assert KEY.encode() not in out
    assert out == whole.replace(KEY.encode(), b"****")


@given(text=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200), max_size=6))
def test_a_stream_without_the_key_passes_unchanged(text: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    assert _redacted(chunks) == text.replace(KEY.encode(), b"****")


def test_a_placeholder_key_is_not_a_secret_to_hide() -> None:
    assert redactor_for("ollama") is None
    assert redactor_for(KEY) is not None


async def _quoting_upstream(request: UpstreamRequest) -> MockReply:
    """An OpenAI-format upstream that streams a word, then an error quoting its key,
    the key cut in two across chunks."""
    body = json.loads(request.body or b"{}")
    delta = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
    }
    error = {"error": {"message": f"key {KEY} revoked", "type": "invalid_request_error"}}
    sse = f"data: {json.dumps(delta)}\n\ndata: {json.dumps(error)}\n\n".encode()
    middle = sse.index(KEY.encode()) + 10

    async def chunks() -> AsyncIterator[bytes]:
        yield sse[:middle]
        yield sse[middle:]

    return MockReply(200, chunks(), {"content-type": "text/event-stream"})


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    app = create_app(parse_config("", environ), environ)
    async with app.lifespan():
        state: GatewayState = app.state.gateway
        state.engine.router.backends["openai"] = HttpProvider(
            "openai",
            adapter_for("openai"),
            "http://upstream.test/v1",
            Secret(KEY),
            transport=MockTransport(_quoting_upstream),
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"stream": True}),  # relayed: the upstream's own bytes
        ("/v1/messages", {"stream": True, "max_tokens": 20}),  # translated to Anthropic
        ("/api/chat", {}),  # translated to Ollama (streams by default)
        ("/v1/responses", {"stream": True, "input": "hi"}),
    ],
    ids=["relayed-openai", "anthropic", "ollama", "responses"],
)
async def test_a_key_quoted_in_a_stream_error_never_reaches_the_caller(
    http: httpx.AsyncClient, path: str, body: dict[str, object]
) -> None:
    request = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "hi"}], **body}
    async with http.stream("POST", path, json=request) as response:
        text = (await response.aread()).decode()
    assert "revoked" in text  # the error itself is passed on
    assert KEY not in text and KEY[:12] not in text.replace("****", "")


def _quoting(status: int, body: bytes, content_type: str = "application/json") -> HttpProvider:
    def upstream(request: UpstreamRequest) -> MockReply:
        return MockReply(status, body, {"content-type": content_type})

    return HttpProvider(
        "openai",
        adapter_for("openai"),
        "http://upstream.test/v1",
        Secret(KEY),
        transport=MockTransport(upstream),
    )


ASK = ChatRequest(model="gpt-x", messages=[Message("user", [TextPart("hi")])])


@pytest.mark.parametrize("status", [401, 500])
async def test_a_key_quoted_in_an_error_status_is_masked_in_the_error_body_too(
    status: int,
) -> None:
    # Error trackers (Sentry) keep an exception's attributes: the body is one.
    quoted = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}"}}).encode()
    with pytest.raises(UpstreamStatusError) as caught:
        await _quoting(status, quoted).complete(ASK, "gpt-x", Call("r1"))
    assert KEY not in str(caught.value)
    assert KEY.encode() not in caught.value.body
    assert b"****" in caught.value.body


async def test_a_key_quoted_in_an_answer_that_is_not_json_is_masked_in_its_raw_text() -> None:
    with pytest.raises(UndecodableResponse) as caught:
        await _quoting(200, f"not json; your key is {KEY}".encode()).complete(
            ASK, "gpt-x", Call("r1")
        )
    assert KEY not in caught.value.raw and "****" in caught.value.raw


def test_a_password_in_a_base_url_is_masked_in_reprs() -> None:
    url = "http://user:hunter2pass@127.0.0.1:9/v1?key=hunter2q"
    provider = HttpProvider("openai", adapter_for("openai"), url, Secret(KEY))
    settings = ProviderSettings(base_url=url, api_key=KEY)
    for shown in (repr(provider), repr(settings)):
        assert "hunter2" not in shown and "user:****@127.0.0.1" in shown


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html><body>Cloudflare: please wait</body></html>", "text/html"),
        (b'{"id": "c1", "object": "chat.completion", "choices": []}', "application/json"),
    ],
    ids=["html", "json"],
)
async def test_a_streamed_request_answered_with_no_stream_carries_what_it_said(
    body: bytes, content_type: str
) -> None:
    provider = _quoting(200, body, content_type)
    with pytest.raises(UndecodableResponse) as caught:
        async for _ in provider.stream(ASK, "gpt-x", Call("r1")):
            pass
    assert caught.value.raw == body.decode()
    assert "not an event stream" in caught.value.message


async def test_a_stream_cut_before_its_first_event_is_still_truncated() -> None:
    provider = _quoting(200, b": keep-alive\n\n", "text/event-stream")
    with pytest.raises(StreamTruncated):
        async for _ in provider.stream(ASK, "gpt-x", Call("r1")):
            pass
