"""Structured outputs through a real gateway and a real ``modelway mock`` upstream.

The ``openai`` SDK's ``parse`` sends a strict ``json_schema`` built from a pydantic model
and reads the answer back into it, whatever format the upstream speaks.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pydantic
import pytest

pytestmark = pytest.mark.integration

#: Every provider format the mock speaks (Gemini's own suite: test_structured_outputs_gemini).
PROVIDERS = ["mock", "openai", "anthropic", "ollama", "gemini"]


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_parse_gets_a_pydantic_object_from_every_provider(
    client: openai.OpenAI, provider: str
) -> None:
    completion = client.chat.completions.parse(
        model=f"{provider}/echo",
        messages=[{"role": "user", "content": "Describe a person."}],
        response_format=Person,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, Person)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_streamed_structured_answer_parses_too(client: openai.OpenAI, provider: str) -> None:
    with client.chat.completions.stream(
        model=f"{provider}/echo",
        messages=[{"role": "user", "content": "Describe a person."}],
        response_format=Person,
    ) as stream:
        completion = stream.get_final_completion()
    assert isinstance(completion.choices[0].message.parsed, Person)
    assert completion.choices[0].finish_reason == "stop"
