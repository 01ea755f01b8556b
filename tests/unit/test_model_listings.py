"""Every adapter's models listing: what an upstream sends, whatever it is, gives model
ids or an ``UpstreamError`` (which the engine reports and leaves out), never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.errors import UndecodableResponse, UpstreamError
from modelway.providers.anthropic import AnthropicAdapter
from modelway.providers.base import Adapter
from modelway.providers.gemini import GeminiAdapter
from modelway.providers.ollama import OllamaAdapter
from modelway.providers.openai import OpenAIAdapter

#: Each adapter, and the field of its listing that holds the list of models.
ADAPTERS: dict[str, tuple[Adapter, str]] = {
    "openai": (OpenAIAdapter(), "data"),
    "anthropic": (AnthropicAdapter(), "data"),
    "gemini": (GeminiAdapter(), "models"),
    "ollama": (OllamaAdapter(), "models"),
}

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["id", "name", "model"]) | st.text(max_size=6), inner)
    ),
    max_leaves=12,
)


def _listing(adapter: str, models: Any) -> bytes:
    return json.dumps({ADAPTERS[adapter][1]: models}).encode()


@given(adapter=st.sampled_from(sorted(ADAPTERS)), models=_JSON)
def test_any_json_as_the_list_of_models_gives_ids_or_an_upstream_error(
    adapter: str, models: Any
) -> None:
    try:
        ids = ADAPTERS[adapter][0].parse_models(_listing(adapter, models))
    except UpstreamError:
        return
    assert isinstance(ids, list) and all(isinstance(i, str) and i for i in ids)


@given(
    adapter=st.sampled_from(sorted(ADAPTERS)),
    body=_JSON.map(json.dumps).map(str.encode) | st.binary(),
)
def test_any_body_as_the_listing_gives_ids_or_an_upstream_error(adapter: str, body: bytes) -> None:
    try:
        ids = ADAPTERS[adapter][0].parse_models(body)
    except UpstreamError:
        return
    assert isinstance(ids, list) and all(isinstance(i, str) and i for i in ids)


@pytest.mark.parametrize(
    ("adapter", "models", "ids"),
    [
        ("openai", [{"id": "gpt-x"}, "hidden-model"], ["gpt-x"]),
        ("openai", [None, {"id": 5}, {"object": "model"}, {"id": "o3"}], ["o3"]),
        ("anthropic", ["claude-x", {"id": None}, {"id": "claude-y"}], ["claude-y"]),
        ("gemini", ["models/x", {"name": 7}, {"name": "models/gemini-y"}], ["gemini-y"]),
        ("ollama", ["llama", {"name": 1, "model": "qwen:7b"}, {"name": "phi"}], ["qwen:7b", "phi"]),
    ],
)
def test_items_that_are_not_objects_with_a_string_id_are_skipped(
    adapter: str, models: list[Any], ids: list[str]
) -> None:
    assert ADAPTERS[adapter][0].parse_models(_listing(adapter, models)) == ids


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("models", [5, {"id": "x"}, "gpt-x", None])
def test_a_listing_without_a_list_of_models_is_undecodable(adapter: str, models: Any) -> None:
    body = _listing(adapter, models)
    with pytest.raises(UndecodableResponse) as raised:
        ADAPTERS[adapter][0].parse_models(body)
    assert raised.value.raw == body.decode()
