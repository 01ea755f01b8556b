"""Requests that once froze a worker or got a 500: now bounded, and a 4xx naming the field.

Each case is an input that was found to hurt; the property-based specs that look for
more are in ``test_hostile_http_bodies.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

import modelway.cli.keys  # noqa: F401  (registers `modelway keys`)
from modelway.cli.app import app as cli_app
from modelway.errors import UpstreamError
from modelway.gateway.openai_routes import _encode_vector
from modelway.mock.schema_examples import MAX_SIZE
from modelway.store import Store, database_url
from modelway.store.tables import api_keys
from tests.unit.gateways import Setup, in_process_gateway
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

HELLO = [{"role": "user", "content": "hello"}]
EMBEDDINGS = ["/v1/embeddings", "/api/embed"]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        yield setup


def _message(path: str, response: Any) -> str:
    """The error message of an answer in the path's dialect."""
    error = response.json()["error"]
    return str(error if path.startswith("/api/") else error["message"])


# --- embeddings ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", EMBEDDINGS)
@pytest.mark.parametrize("dimensions", [10**7, True, 1e308, "8", 0, 8193])
async def test_embedding_dimensions_out_of_bounds_are_a_400_naming_the_field(
    gateway: Setup, path: str, dimensions: Any
) -> None:
    # 10**7 was served (ten million floats per input), True served a 1-dimension vector.
    body = {"model": "mock/echo", "input": "x", "dimensions": dimensions}
    response = await gateway.http.post(path, json=body)
    assert response.status_code == 400
    assert _message(path, response).startswith("dimensions: ")


@pytest.mark.parametrize("path", EMBEDDINGS)
async def test_more_than_2048_inputs_are_a_400_naming_the_field(gateway: Setup, path: str) -> None:
    body = {"model": "mock/echo", "input": ["x"] * 2049}
    response = await gateway.http.post(path, json=body)
    assert response.status_code == 400
    assert _message(path, response).startswith("input: at most 2048")


@pytest.mark.parametrize("path", EMBEDDINGS)
async def test_the_mock_refuses_more_values_than_its_bound(gateway: Setup, path: str) -> None:
    body = {"model": "mock/echo", "input": ["x"] * 2048, "dimensions": 4096}
    response = await gateway.http.post(path, json=body)
    assert response.status_code == 400
    assert _message(path, response).startswith("input: the mock answers at most")
    wide = await gateway.http.post(path, json={**body, "input": "x", "dimensions": 8192})
    assert wide.status_code == 400
    assert _message(path, wide).startswith("dimensions: the mock makes 1 to 4096")


@pytest.mark.parametrize("vector", [[1e39], ["0.5"], [[0.5]]])
def test_an_upstream_vector_base64_cannot_hold_is_an_upstream_error(vector: list[Any]) -> None:
    # struct.pack raised, a 500; an upstream's malformed answer is a 502.
    with pytest.raises(UpstreamError) as failed:
        _encode_vector(vector, "base64")
    assert failed.value.status == 502


# --- tool schemas the mock fabricates arguments for -----------------------------------------


def _chat_with_tool(parameters: dict[str, Any]) -> dict[str, Any]:
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    return {"model": "mock/echo", "messages": HELLO, "tools": [tool]}


def _arguments(response: Any) -> str:
    assert response.status_code == 200, response.text
    [call] = response.json()["choices"][0]["message"]["tool_calls"]
    return str(call["function"]["arguments"])


async def test_nested_arrays_with_min_items_300_give_bounded_arguments(gateway: Setup) -> None:
    # The reported 420-byte request: 300**3 strings of arguments crashed the worker.
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(3):
        schema = {"type": "array", "minItems": 300, "items": schema}
    body = _chat_with_tool({"type": "object", "properties": {"a": schema}})
    assert len(orjson.dumps(body)) < 420
    response = await gateway.http.post("/v1/chat/completions", json=body)
    assert len(_arguments(response)) <= MAX_SIZE + 1024


@pytest.mark.parametrize(
    "property_schema",
    [
        {"type": "array", "minItems": "abc"},
        {"type": "string", "minLength": "abc"},
        {"type": "integer", "minimum": "abc"},
        {"type": "integer", "minimum": 1e308},
    ],
    ids=["minItems-abc", "minLength-abc", "minimum-abc", "integer-minimum-1e308"],
)
async def test_schema_keywords_of_the_wrong_type_or_size_are_not_a_500(
    gateway: Setup, property_schema: dict[str, Any]
) -> None:
    body = _chat_with_tool({"type": "object", "properties": {"a": property_schema}})
    orjson.loads(_arguments(await gateway.http.post("/v1/chat/completions", json=body)))


@pytest.mark.parametrize("parameters", [[1], "x", 5])
async def test_tool_parameters_that_are_not_an_object_are_a_400(
    gateway: Setup, parameters: Any
) -> None:
    response = await gateway.http.post("/v1/chat/completions", json=_chat_with_tool(parameters))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "tools.0.function.parameters: expected object"


# --- model names in response headers --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": HELLO, "stream": True}),
        ("/v1/chat/completions", {"messages": HELLO}),
        ("/v1/messages", {"messages": HELLO, "max_tokens": 5, "stream": True}),
        ("/api/chat", {"messages": HELLO}),
        ("/v1/embeddings", {"input": "x"}),
        ("/api/embed", {"input": "x"}),
    ],
    ids=["openai-stream", "openai", "anthropic-stream", "ollama-stream", "embed", "ollama-embed"],
)
@pytest.mark.parametrize("name", ["€uro", "line\r\nbreak", "100%"])
async def test_any_model_name_reaches_the_model_header_percent_encoded(
    gateway: Setup, path: str, body: dict[str, Any], name: str
) -> None:
    response = await gateway.http.post(path, json={**body, "model": f"mock/{name}"})
    assert response.status_code == 200, response.text
    header = response.headers["x-modelway-model"]
    assert header.isascii() and header.isprintable()
    assert unquote(header) == name


# --- the same-format relay ------------------------------------------------------------------


@pytest.mark.parametrize("options", [[1], "abc", 5, [["include_usage", True]]])
async def test_relayed_stream_options_that_are_not_an_object_are_a_400(
    gateway: Setup, options: Any
) -> None:
    body = {"model": "openai/gpt-x", "messages": HELLO, "stream": True, "stream_options": options}
    response = await gateway.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "stream_options: expected an object"


async def test_relayed_stream_options_that_are_an_object_are_kept(gateway: Setup) -> None:
    body = {"model": "openai/gpt-x", "messages": HELLO, "stream": True, "stream_options": {}}
    response = await gateway.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert "data: [DONE]" in response.text


# --- bodies nested deeper than the gateway writes back -------------------------------------


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/messages/count_tokens",
            {"tools": [{"name": "f", "input_schema": {"a": _nested(300)}}]},
        ),
        ("/v1/chat/completions", {"model": "openai/gpt-x", "metadata": _nested(300)}),
        ("/v1/chat/completions", {"tools": [_chat_with_tool({"x": _nested(300)})["tools"][0]]}),
        (
            "/v1/responses",
            {
                "input": "x",
                "stream": True,
                "tools": [{"type": "function", "name": "f", "parameters": {"x": _nested(300)}}],
            },
        ),
    ],
    ids=["count-tokens-schema", "relayed-field", "tool-schema", "responses-stream-tool"],
)
async def test_a_body_nested_past_the_bound_is_a_400(
    gateway: Setup, path: str, body: dict[str, Any]
) -> None:
    # Each was a 500: orjson writes no deeper than 254 levels, and these parts are written again.
    full = {"model": "mock/echo", "messages": HELLO, "max_tokens": 5, **body}
    response = await gateway.http.post(path, content=json.dumps(full))  # orjson cannot write it
    assert response.status_code == 400
    assert "nests deeper than 128 levels" in response.text


# bpe-openai (count_tokens' tokenizer) loads its data through a deprecated importlib call.
@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_a_body_nested_to_the_bound_is_answered(gateway: Setup) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object", "x": _nested(124)}}]
    body = {"model": "mock/echo", "messages": HELLO, "tools": tools}
    response = await gateway.http.post("/v1/messages/count_tokens", content=orjson.dumps(body))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("depth", [200, 2000])
async def test_key_metadata_nested_past_the_bound_is_a_400(gateway: Setup, depth: int) -> None:
    # 2000 levels made msgspec's decoder raise RecursionError: a 500.
    raw = b'{"name": "k", "metadata": {"a": ' + b"[" * depth + b"]" * depth + b"}}"
    response = await gateway.http.post("/admin/api/keys", content=raw)
    assert response.status_code == 400
    assert "nests" in response.json()["error"]["message"]


# --- the admin API --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rpm", 2**63),
        ("rpm", 2**31),
        ("tpm", 2**63),
        ("budget_tokens", 2**63),
        ("budget_tokens", 2**64),
    ],
)
async def test_limits_too_large_for_the_store_are_a_400_naming_the_field(
    gateway: Setup, field: str, value: int
) -> None:
    response = await gateway.http.post("/admin/api/keys", json={"name": "k", field: value})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"{field}: expected `int` <=")


async def test_the_largest_limits_are_stored(gateway: Setup) -> None:
    body = {"name": "k", "rpm": 2**31 - 1, "tpm": 2**31 - 1, "budget_tokens": 2**63 - 1}
    response = await gateway.http.post("/admin/api/keys", json=body)
    assert response.status_code == 201
    assert response.json()["budget_tokens"] == 2**63 - 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expires_at", 1e300),
        ("expires_at", "10000-01-01T00:00:00Z"),
        ("expires_at", "9999-12-31T23:59:59-01:00"),
        ("expires_in_days", 1e300),
        ("expires_in_days", 3_000_000),
    ],
)
async def test_an_expiry_past_year_9999_is_a_400_naming_the_field(
    gateway: Setup, field: str, value: Any
) -> None:
    response = await gateway.http.post("/admin/api/keys", json={"name": "k", field: value})
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"{field}: ")


async def test_an_expiry_before_year_1_in_utc_has_passed(gateway: Setup) -> None:
    body = {"name": "k", "expires_at": "0001-01-01T00:00:00+14:00"}
    response = await gateway.http.post("/admin/api/keys", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "expires_at: that time has already passed"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/admin/api/requests?status=18446744073709551616", "status"),
        ("/admin/api/requests?status=-1", "status"),
        ("/admin/api/requests?limit=" + "9" * 5000, "limit"),
    ],
    ids=["status-2**64", "status-negative", "limit-5000-digits"],
)
async def test_list_parameters_out_of_range_are_a_400_naming_them(
    gateway: Setup, query: str, field: str
) -> None:
    response = await gateway.http.get(query)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"{field}: ")


def test_keys_list_shows_an_expiry_no_calendar_holds(tmp_path: Path) -> None:
    # Such a key could be stored before expiries were bounded; listing it raised.
    async def store_key() -> None:
        store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
        try:
            record, _ = await store.keys.create("far")
            async with store.engine.begin() as connection:
                statement = update(api_keys).where(api_keys.c.id == record.id)
                await connection.execute(statement.values(expires_at=1e300))
        finally:
            await store.aclose()

    asyncio.run(store_key())
    result = CliRunner().invoke(
        cli_app,
        ["keys", "list"],
        env={"MODELWAY_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "epoch 1e+300" in result.output
