"""The cache key: one question, however asked, one key; anything that changes the answer
or the tenant, another."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from modelway.cache import request_key
from modelway.cache.keys import namespace_slot
from modelway.dialects.anthropic import AnthropicDialect
from modelway.dialects.ollama import OllamaDialect
from modelway.dialects.openai import OpenAIDialect
from modelway.types import ChatRequest, Tool

QUESTION = "What is the capital of France?"


def _openai(**fields: Any) -> ChatRequest:
    body = {
        "model": "smart",
        "temperature": 0,
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": QUESTION},
        ],
        **fields,
    }
    return OpenAIDialect().decode_chat(body)


def _key(request: ChatRequest, alias: str = "smart", namespace: str = "team:red") -> str:
    return request_key(request, alias, namespace)


def test_the_same_question_through_openai_and_anthropic_has_one_key() -> None:
    anthropic = AnthropicDialect().decode_chat(
        {
            "model": "claude-whatever",
            "system": "Be brief.",
            "temperature": 0.0,
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
        }
    )
    assert _key(anthropic) == _key(_openai())


def test_the_same_question_through_ollama_has_the_same_key() -> None:
    ollama = OllamaDialect().decode_chat(
        {
            "model": "smart",
            "options": {"temperature": 0, "num_predict": 64},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": QUESTION},
            ],
        }
    )
    assert _key(ollama) == _key(_openai())


def test_streaming_usage_options_and_the_typed_model_name_do_not_change_the_key() -> None:
    plain = _openai()
    streamed = _openai(stream=True, stream_options={"include_usage": True}, user="u1")
    renamed = msgspec.structs.replace(plain, model="openai/gpt-4o")
    assert _key(plain) == _key(streamed) == _key(renamed)


def test_another_namespace_alias_or_question_has_another_key() -> None:
    base = _openai()
    keys = {
        _key(base),
        _key(base, namespace="team:blue"),
        _key(base, namespace="key:k1"),
        _key(base, alias="other"),
        _key(_openai(temperature=0.5)),
        _key(_openai(max_tokens=65)),
        _key(_openai(seed=7)),
        _key(_openai(messages=[{"role": "user", "content": QUESTION}])),  # no system
        _key(
            _openai(
                messages=[
                    {"role": "system", "content": "Be long."},
                    {"role": "user", "content": QUESTION},
                ]
            )
        ),
        _key(msgspec.structs.replace(base, tools=[Tool(name="lookup")])),
        _key(msgspec.structs.replace(base, tools=[Tool(name="search")])),
        _key(msgspec.structs.replace(base, tool_choice="required")),
    }
    assert len(keys) == 12


_GENERATIONS = st.integers(min_value=0, max_value=2**63 - 1)  # the store's BigInteger counts
_PLACES = st.tuples(st.text(), _GENERATIONS, _GENERATIONS)


@given(_PLACES, _PLACES)
# Team ``x`` after its first clear, and a team named ``x#0.1`` never cleared, once met.
@example(("team:x", 0, 1), ("team:x#0.1", 0, 0))
@example(("team:x", 1, 0), ("team:x#1.0", 0, 0))
@example(("a", 1, 23), ("a", 12, 3))
@example(("0:a", 1, 0), ("a", 1, 0))
def test_two_namespaces_or_generations_never_share_a_slot(
    one: tuple[str, int, int], other: tuple[str, int, int]
) -> None:
    if one != other:
        assert namespace_slot(*one) != namespace_slot(*other)


@given(st.text(), st.text())
@example("team:a", "team:a\x00")
def test_two_namespaces_never_share_a_key_for_one_question(one: str, other: str) -> None:
    if one != other:
        assert _key(_openai(), namespace=one) != _key(_openai(), namespace=other)
