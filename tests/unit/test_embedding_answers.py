"""Every adapter's embeddings answer: whatever an upstream sends gives vectors of floats
or an ``UpstreamError`` (a 502 in the caller's dialect), never a crash later on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.errors import UpstreamError
from modelway.providers.base import Adapter
from modelway.providers.gemini import GeminiAdapter
from modelway.providers.ollama import OllamaAdapter
from modelway.providers.openai import OpenAIAdapter
from tests.unit.test_model_listings import _JSON

ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "gemini": GeminiAdapter(),
    "ollama": OllamaAdapter(),
}
_NUMBERS = st.lists(st.integers(-5, 5) | st.floats(-1, 1), max_size=3)
_OPENAI_ITEM = st.fixed_dictionaries({"embedding": _NUMBERS | _JSON, "index": _JSON})
#: Answers shaped as each upstream's, with anything where the vectors go.
_SHAPED = st.one_of(
    st.lists(_JSON | _OPENAI_ITEM, max_size=3).map(lambda data: {"data": data, "model": "m"}),
    (st.lists(_NUMBERS | _JSON, max_size=3) | _JSON).map(lambda vectors: {"embeddings": vectors}),
    st.lists(st.fixed_dictionaries({"values": _NUMBERS | _JSON}), max_size=3).map(
        lambda items: {"embeddings": items}
    ),
)


@given(adapter=st.sampled_from(sorted(ADAPTERS)), answer=_SHAPED | _JSON)
def test_any_answer_gives_vectors_of_floats_or_an_upstream_error(adapter: str, answer: Any) -> None:
    try:
        parsed = ADAPTERS[adapter].parse_embeddings(json.dumps(answer).encode())
    except UpstreamError:
        return
    assert all(type(value) is float for vector in parsed.vectors for value in vector)
    assert parsed.usage.prompt_tokens >= 0


@pytest.mark.parametrize(
    ("adapter", "answer"),
    [
        ("openai", {"data": [5]}),
        ("openai", {"data": [{"embedding": "AAAA", "index": 0}]}),
        (
            "openai",
            {"data": [{"embedding": [0.1], "index": "x"}, {"embedding": [0.2], "index": 1}]},
        ),
        ("openai", {"data": 5}),
        ("ollama", {"embeddings": [[0.1, "x"]]}),
        ("ollama", {"embeddings": [[0.1]], "prompt_eval_count": "many"}),
    ],
)
def test_the_shapes_that_crashed_the_parsers_are_an_upstream_error_or_read(
    adapter: str, answer: dict[str, Any]
) -> None:
    try:
        parsed = ADAPTERS[adapter].parse_embeddings(json.dumps(answer).encode())
    except UpstreamError:
        return
    assert parsed.vectors and parsed.usage.prompt_tokens == 0


def test_vectors_come_back_in_the_order_of_their_index() -> None:
    answer = {"data": [{"embedding": [2], "index": 1}, {"embedding": [1], "index": 0}]}
    parsed = OpenAIAdapter().parse_embeddings(json.dumps(answer).encode())
    assert parsed.vectors == [[1.0], [2.0]]
