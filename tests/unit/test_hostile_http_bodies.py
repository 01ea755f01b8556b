"""The gateway's non-chat routes, fed realistic requests with any part swapped for any JSON.

Embeddings in both shapes, the admin API's writes and listings, ``count_tokens``,
``/api/show`` and the model listings: whatever the body, path or query, the answer is
never a 5xx, and an error comes in the dialect of the path (OpenAI's ``{"error":
{"message"}}``, Anthropic's ``{"type": "error", ...}``, Ollama's ``{"error": "..."}``).
The chat paths have their own specs (``test_dialect_hostile_bodies.py`` and
``test_gateway_asgi.py``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.gateways import Setup, in_process_gateway
from tests.unit.test_dialect_hostile_bodies import REALISTIC, _mutate, _paths
from tests.unit.test_mock_bounds import _SCHEMAS
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

#: Hypothesis examples per property; each was run once with 3000 to look for failures.
EXAMPLES = 150
# bpe-openai (count_tokens' tokenizer) loads its data through a deprecated importlib call.
pytestmark = pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


#: JSON that reaches the corners: huge and negative numbers, text outside Latin-1, values
#: nested deeper than the gateway takes.
_JSON = st.recursive(
    st.integers(100, 900).map(_nested)
    | st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**31, 2**63, 2**64, -(2**63) - 1, 10**30, 0, -1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e300, -1e300, 1e-300, 0.5])
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)

#: Requests such as real clients send, every field the route reads.
BODIES: dict[str, dict[str, Any]] = {
    "/v1/embeddings": {
        "model": "mock/echo",
        "input": ["one two", "three"],
        "dimensions": 16,
        "encoding_format": "base64",
        "user": "u1",
    },
    "/api/embed": {
        "model": "mock/echo",
        "input": ["one", "two"],
        "dimensions": 16,
        "truncate": True,
        "options": {"temperature": 0},
        "keep_alive": "5m",
    },
    "/v1/messages/count_tokens": {
        key: value
        for key, value in REALISTIC["/v1/messages"].items()
        if key not in ("max_tokens", "stream", "stop_sequences", "metadata", "temperature")
    },
    "/api/show": {"model": "mock/echo", "verbose": True},
    "/admin/api/keys": {
        "name": "ci",
        "owner_user": "ann",
        "owner_team": "ml",
        "models": ["gpt-*", "mock/*"],
        "rpm": 60,
        "tpm": 100_000,
        "budget_usd": 25.0,
        "budget_tokens": 1000,
        "budget_period": "month",
        "expires_in_days": 90,
        "metadata": {"ticket": "OPS-42"},
    },
}


def is_in_dialect(path: str, body: Any) -> bool:
    """Whether ``body`` is an error in the dialect ``path`` speaks."""
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    if path.startswith("/api/"):
        return isinstance(error, str)
    if path.startswith("/v1/messages") and body.get("type") != "error":
        return False
    return isinstance(error, dict) and isinstance(error.get("message"), str)


def check(path: str, response: httpx.Response) -> None:
    """No 5xx; a 4xx in the path's dialect."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert is_in_dialect(path, response.json()), response.text


def swapped(body: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """``body`` with one to three of its parts, at any depth, replaced by any JSON or deleted."""
    body = copy.deepcopy(body)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        places = _paths(body)
        if not places:
            break
        place = data.draw(st.sampled_from(places), label="place")
        value = data.draw(_JSON, label="value")
        _mutate(body, place, value, delete=data.draw(st.booleans(), label="delete"))
    return body


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        yield setup


_PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("path", sorted(BODIES))
async def test_the_realistic_request_itself_is_answered(gateway: Setup, path: str) -> None:
    response = await gateway.http.post(path, json=BODIES[path])
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("path", sorted(BODIES))
@_PROPERTY
@given(data=st.data())
async def test_any_part_swapped_for_any_json_is_never_a_5xx(
    gateway: Setup, path: str, data: st.DataObject
) -> None:
    body = swapped(BODIES[path], data)
    check(path, await gateway.http.post(path, content=json.dumps(body)))  # orjson: <255 levels


@pytest.mark.parametrize("path", ["/v1/embeddings", "/api/embed"])
@_PROPERTY
@given(
    model=st.text(max_size=12).map("mock/{}".format) | st.text(max_size=12),
    texts=st.text(max_size=20) | st.lists(st.text(max_size=8), max_size=40),
    dimensions=st.none() | st.integers() | st.integers(1, 9000) | _JSON,
    encoding=st.sampled_from(["float", "base64", None]) | _JSON,
)
async def test_any_embedding_fields_are_never_a_5xx(
    gateway: Setup, path: str, model: str, texts: Any, dimensions: Any, encoding: Any
) -> None:
    body = {"model": model, "input": texts, "dimensions": dimensions, "encoding_format": encoding}
    check(path, await gateway.http.post(path, json=body))


_QUERY_TEXT = st.text(max_size=30) | st.integers().map(str) | st.sampled_from(["", "0", "-0"])


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/admin/api/requests", ["limit", "key_id", "model", "status"]),
        ("/admin/api/usage", ["by", "since", "key_id"]),
    ],
)
@_PROPERTY
@given(data=st.data())
async def test_any_admin_list_parameters_are_never_a_5xx(
    gateway: Setup, path: str, names: list[str], data: st.DataObject
) -> None:
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True), label="names")
    params = {name: data.draw(_QUERY_TEXT, label=name) for name in chosen}
    check(path, await gateway.http.get(path, params=params))


@_PROPERTY
@given(key_id=st.text(min_size=1, max_size=40), method=st.sampled_from(["GET", "DELETE"]))
async def test_any_key_id_in_the_path_is_never_a_5xx(
    gateway: Setup, key_id: str, method: str
) -> None:
    path = f"/admin/api/keys/{quote(key_id, safe='')}"
    check("/admin/api/keys", await gateway.http.request(method, path))


@_PROPERTY
@given(
    path=st.sampled_from(["/v1/models", "/v1/models/", "/api/tags", "/api/version", "/health"]),
    tail=st.text(max_size=20),
    query=st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=3),
)
async def test_any_listing_path_and_query_is_never_a_5xx(
    gateway: Setup, path: str, tail: str, query: dict[str, str]
) -> None:
    if path.endswith("/"):
        path += quote(tail, safe="/")
    response = await gateway.http.get(path, params=query)
    assert response.status_code < 500, response.text


def _chat_with_tool(path: str, schema: Any, stream: bool) -> dict[str, Any]:
    """A chat in ``path``'s dialect offering the mock one tool whose schema is ``schema``."""
    hello = [{"role": "user", "content": "hello"}]
    function = {"name": "f", "parameters": schema}
    if path == "/v1/messages":
        tool = {"name": "f", "input_schema": schema}
        return {"messages": hello, "max_tokens": 50, "tools": [tool], "stream": stream}
    if path == "/v1/responses":
        return {"input": "hello", "tools": [{"type": "function", **function}], "stream": stream}
    tool = {"type": "function", "function": function}
    return {"messages": hello, "tools": [tool], "stream": stream}


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/responses", "/v1/messages", "/api/chat"]
)
@_PROPERTY
@given(schema=_SCHEMAS, stream=st.booleans())
async def test_a_tool_with_any_schema_is_called_by_the_mock_without_a_5xx(
    gateway: Setup, path: str, schema: Any, stream: bool
) -> None:
    body = {"model": "mock/echo", **_chat_with_tool(path, schema, stream)}
    check(path, await gateway.http.post(path, json=body))
