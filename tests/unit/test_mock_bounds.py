"""The mock's work is bounded whatever a request asks: tool schemas and embedding sizes.

The mock provider is always on unless switched off, so a caller's JSON Schema or
``dimensions`` reaches it straight from the request body. No value may size its work
without a bound, and none may make it raise anything but a 4xx ``BadRequest``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelway.errors import BadRequest
from modelway.mock.engine import (
    MAX_EMBEDDING_DIMENSIONS,
    MAX_EMBEDDING_VALUES,
    mock_embedding,
    mock_embeddings,
    mock_response,
)
from modelway.mock.schema_examples import (
    MAX_INTEGER,
    MAX_ITEMS,
    MAX_SIZE,
    MAX_STRING_LENGTH,
    schema_example,
)
from modelway.types import ChatRequest, Message, TextPart, Tool


def _nested_arrays(depth: int, min_items: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "minItems": min_items, "items": schema}
    return schema


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


# A little over the budget: separators and brackets are estimated, not counted.
_SLACK = 1024


# --- tool-call arguments from a schema ------------------------------------------------------


def test_nested_arrays_with_large_min_items_stay_within_the_size_bound() -> None:
    # Reported: a 420-byte chat whose schema nests arrays with minItems 300 crashed a worker
    # (300**3 strings); two levels are enough to show the bound (90,000 items unbounded).
    for depth in (2, 3):
        value = schema_example(_nested_arrays(depth, 300))
        assert _size(value) <= MAX_SIZE + _SLACK
        assert isinstance(value, list) and value


def test_min_items_and_min_length_are_clamped() -> None:
    assert len(schema_example({"type": "array", "minItems": 10**9})) == MAX_ITEMS
    text = schema_example({"type": "string", "minLength": 10**9})
    assert len(text) == MAX_STRING_LENGTH


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "minItems": "abc"},
        {"type": "array", "maxItems": [1]},
        {"type": "string", "minLength": "abc"},
        {"type": "string", "maxLength": {"a": 1}},
        {"type": "integer", "minimum": "abc"},
        {"type": "number", "maximum": None, "exclusiveMinimum": "x"},
        {"enum": {"a": 1}},
        {"anyOf": [1, "x", None]},
        {"type": "object", "properties": [1, 2], "required": 5},
        {"type": "object", "properties": {"a": {}}, "required": [["a"], {"b": 1}]},
        {"$ref": 5},
        {"type": "string", "format": {"a": [1, 2]}},
    ],
    ids=lambda schema: orjson.dumps(schema).decode()[:40],
)
def test_keywords_of_the_wrong_type_are_ignored(schema: dict[str, Any]) -> None:
    orjson.dumps(schema_example(schema))  # neither raises


@pytest.mark.parametrize("ref", ["#", "#/$defs/node"])
def test_a_schema_that_refers_to_itself_ends(ref: str) -> None:
    node = {
        "type": "object",
        "properties": {"a": {"$ref": ref}, "b": {"$ref": ref}},
        "required": ["a", "b"],
    }
    schema = {**node, "$defs": {"node": node}}
    assert _size(schema_example(schema)) <= MAX_SIZE + _SLACK


def test_integers_stay_within_what_json_readers_hold() -> None:
    # 1e308 as an integer has 309 digits: orjson refuses to write it (a 500 before).
    assert schema_example({"type": "integer", "minimum": 1e308}) == MAX_INTEGER
    assert schema_example({"type": "integer", "maximum": -1e308}) == -MAX_INTEGER


def test_a_large_constant_repeated_is_not_copied_past_the_bound() -> None:
    big = "x" * (MAX_SIZE // 2)
    schema = {
        "type": "object",
        "properties": {name: {"$ref": "#/$defs/big"} for name in "abcdefgh"},
        "$defs": {"big": {"const": big}},
    }
    assert _size(schema_example(schema)) <= MAX_SIZE + _SLACK


def test_a_tool_with_a_hostile_schema_is_still_called() -> None:
    tool = Tool(name="t", parameters=_nested_arrays(3, 300))
    request = ChatRequest(
        model="echo", messages=[Message(role="user", content=[TextPart("go")])], tools=[tool]
    )
    [call] = mock_response(request, "echo").message.tool_calls
    assert len(call.arguments) <= MAX_SIZE + _SLACK


_SCHEMA_KEYWORDS = st.sampled_from(
    [
        "type",
        "properties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "enum",
        "const",
        "default",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "$defs",
        "format",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["object", "array", "string", "integer", "number", "null", "#", "#/$defs/a"])
    | st.text(max_size=6)
)
_SCHEMAS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_SCHEMA_KEYWORDS | st.text(max_size=3), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(schema=_SCHEMAS)
def test_any_schema_gives_a_json_value_within_the_bound(schema: Any) -> None:
    assert _size(schema_example(schema)) <= MAX_SIZE + _SLACK


# --- embeddings ---------------------------------------------------------------------------


def test_embeddings_past_the_dimension_bound_are_refused_naming_the_field() -> None:
    with pytest.raises(BadRequest, match=r"^dimensions: "):
        mock_embeddings(["x"], MAX_EMBEDDING_DIMENSIONS + 1)
    with pytest.raises(BadRequest, match=r"^dimensions: "):
        mock_embeddings(["x"], 0)
    assert len(mock_embeddings(["x"], MAX_EMBEDDING_DIMENSIONS)[0]) == MAX_EMBEDDING_DIMENSIONS


def test_embeddings_past_the_total_bound_are_refused_naming_the_field() -> None:
    texts = ["x"] * (MAX_EMBEDDING_VALUES // 64 + 1)
    with pytest.raises(BadRequest, match=r"^input: the mock answers at most"):
        mock_embeddings(texts, 64)
    assert len(mock_embeddings(texts[:-1], 64)) == len(texts) - 1


def test_an_embedding_hashes_its_text_once_not_once_per_eight_dimensions() -> None:
    # A long text at many dimensions used to be hashed dimensions/8 times over.
    calls: list[int] = []

    class Counting(str):
        def encode(self, *args: Any, **kwargs: Any) -> bytes:
            calls.append(1)
            return super().encode(*args, **kwargs)

    vector = mock_embedding(Counting("a long text " * 100), 4096)
    assert len(vector) == 4096 and len(calls) == 1
