"""Every chat dialect, fed a realistic request with any part swapped for any JSON.

A decoder either gives a canonical request or refuses with a 4xx ``ModelwayError``
naming the field; anything else (a ``TypeError`` from hashing a list, a ``KeyError``)
would reach the caller as a 500. Each case starts from a request such as a real client
sends, then replaces or deletes one to three of its parts, at any depth.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelway.dialects.base import Dialect
from modelway.errors import ModelwayError
from modelway.gateway.dialect_paths import CHAT_PATHS

_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
_PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)

#: A request of each dialect such as real clients send, every feature the decoder reads.
REALISTIC: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "model": "mock/echo",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "Rules."}]},
            {
                "role": "user",
                "name": "ann",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{_PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": _SCHEMA}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": _SCHEMA}},
        "max_completion_tokens": 50,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
        "reasoning_effort": "low",
        "user": "u1",
    },
    "/v1/responses": {
        "model": "mock/echo",
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "Rules."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Weather?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{_PNG}"},
                ],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "weather",
                "arguments": '{"city": "Oslo"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "Check."}],
                "encrypted_content": "anthropic:sig",
            },
            {"type": "message", "role": "assistant", "content": "Sunny."},
        ],
        "tools": [{"type": "function", "name": "weather", "parameters": _SCHEMA}],
        "tool_choice": {"type": "function", "name": "weather"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": _SCHEMA, "strict": True}},
        "reasoning": {"effort": "low", "summary": "auto"},
        "previous_response_id": None,
        "max_output_tokens": 50,
        "temperature": 0.5,
        "stream": True,
        "store": False,
        "parallel_tool_calls": True,
    },
    "/v1/completions": {
        "model": "mock/echo",
        "prompt": "Once upon a time",
        "max_tokens": 20,
        "temperature": 0.5,
        "stop": "END",
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    "/v1/messages": {
        "model": "mock/echo",
        "system": [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": _PNG},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "O"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "tu_1",
                        "content": [{"type": "text", "text": "sunny"}],
                    }
                ],
            },
        ],
        "tools": [{"name": "weather", "description": "d", "input_schema": _SCHEMA}],
        "tool_choice": {"type": "tool", "name": "weather"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "output_config": {"effort": "high", "format": {"type": "json_schema", "schema": _SCHEMA}},
        "output_format": {"type": "json_schema", "schema": _SCHEMA},
        "max_tokens": 50,
        "temperature": 0.5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "stream": True,
    },
    "/api/chat": {
        "model": "mock/echo",
        "messages": [
            {"role": "system", "content": "Rules."},
            {"role": "user", "content": "Weather?", "images": [_PNG]},
            {
                "role": "assistant",
                "content": "",
                "thinking": "Check the weather.",
                "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Oslo"}}}],
            },
            {"role": "tool", "content": "sunny", "tool_name": "weather"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": _SCHEMA}}],
        "format": _SCHEMA,
        "options": {"temperature": 0.5, "num_predict": 50, "stop": ["END"], "seed": 7},
        "think": True,
        "stream": False,
        "keep_alive": "5m",
    },
    "/api/generate": {
        "model": "mock/echo",
        "prompt": "Weather?",
        "system": "Rules.",
        "images": [_PNG],
        "format": "json",
        "options": {"temperature": 0.5, "num_predict": 50},
        "stream": False,
        "raw": False,
    },
}

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    # Past 64 bits: Python decodes them, but JSON written again (orjson) cannot hold them.
    | st.sampled_from([2**64, -(2**63) - 1, 10**30])
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON tree below its root, parents before children."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    found: list[tuple[Any, ...]] = []
    for key, child in children:
        found.append((*here, key))
        found.extend(_paths(child, (*here, key)))
    return found


def _mutate(body: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> None:
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


def _decode(dialect: Dialect, body: Any) -> None:
    try:
        dialect.decode_chat(body)
    except ModelwayError as refused:
        assert refused.status < 500, refused
        assert str(refused)


@pytest.mark.parametrize("path", sorted(REALISTIC))
def test_the_realistic_request_itself_decodes(path: str) -> None:
    CHAT_PATHS[path].decode_chat(copy.deepcopy(REALISTIC[path]))


@pytest.mark.parametrize("path", sorted(REALISTIC))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_part_swapped_for_any_json_decodes_or_is_a_4xx(path: str, data: st.DataObject) -> None:
    body = copy.deepcopy(REALISTIC[path])
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        places = _paths(body)
        if not places:
            break
        place = data.draw(st.sampled_from(places), label="place")
        value = data.draw(_JSON, label="value")
        _mutate(body, place, value, delete=data.draw(st.booleans(), label="delete"))
    _decode(CHAT_PATHS[path], body)


@pytest.mark.parametrize(
    ("path", "place"),
    [
        ("/v1/chat/completions", ("messages", 3, "tool_calls", 0, "function", "arguments")),
        ("/v1/messages", ("messages", 1, "content", 2, "input")),
        ("/api/chat", ("messages", 2, "tool_calls", 0, "function", "arguments")),
    ],
)
def test_tool_arguments_json_cannot_carry_are_a_400_naming_them(
    path: str, place: tuple[Any, ...]
) -> None:
    body = copy.deepcopy(REALISTIC[path])
    _mutate(body, place, {"n": -(2**63) - 1}, delete=False)
    with pytest.raises(ModelwayError) as refused:
        CHAT_PATHS[path].decode_chat(body)
    assert refused.value.status == 400 and "64-bit" in str(refused.value)
