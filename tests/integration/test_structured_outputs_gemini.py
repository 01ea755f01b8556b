"""Structured outputs to a Gemini-format upstream, through a real gateway and ``modelway mock``.

A Chat Completions ``response_format`` becomes Gemini's ``responseMimeType`` and
``responseSchema`` (``providers/gemini_request.py``); the mock's Gemini dialect reads them
back, and its answer must be JSON valid against the caller's schema, whole and streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import orjson
import pydantic
import pytest

pytestmark = pytest.mark.integration

MODEL = "gemini/gemini-2.5-flash"
#: What a strict schema holds: nesting, enums, nullables, arrays with a minimum, ``$ref``.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "age": {"type": "integer", "minimum": 18},
        "score": {"type": "number"},
        "member": {"type": "boolean"},
        "role": {"type": "string", "enum": ["admin", "user"]},
        "level": {"type": "integer", "enum": [3, 5]},
        "nickname": {"type": ["string", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "address": {"$ref": "#/$defs/Address"},
    },
    "required": [
        "name",
        "age",
        "score",
        "member",
        "role",
        "level",
        "nickname",
        "tags",
        "address",
    ],
    "additionalProperties": False,
    "$defs": {
        "Address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
            "required": ["city", "zip"],
            "additionalProperties": False,
        }
    },
}
#: What Gemini can be held to: an enum on strings only ("only allowed for STRING type"),
#: so the integer enum reaches it as an integer whose values its description names.
ENFORCED: dict[str, Any] = {
    **SCHEMA,
    "properties": {**SCHEMA["properties"], "level": {"type": "integer"}},
}
RESPONSE_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {"name": "Person", "schema": SCHEMA, "strict": True},
}
MESSAGES: Any = [{"role": "user", "content": "Describe a person."}]


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


def test_a_json_schema_answer_from_a_gemini_upstream_is_valid(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format=RESPONSE_FORMAT
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    jsonschema.validate(orjson.loads(choice.message.content or ""), ENFORCED)


def test_a_streamed_json_schema_answer_from_a_gemini_upstream_is_valid(
    client: openai.OpenAI,
) -> None:
    pieces: list[str] = []
    finish_reasons: list[str] = []
    for chunk in client.chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format=RESPONSE_FORMAT, stream=True
    ):
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason is not None:
                finish_reasons.append(choice.finish_reason)
    assert finish_reasons == ["stop"]
    jsonschema.validate(orjson.loads("".join(pieces)), ENFORCED)


def test_json_object_from_a_gemini_upstream_is_an_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert isinstance(orjson.loads(completion.choices[0].message.content or ""), dict)


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_sdk_parse_gets_a_pydantic_object_from_a_gemini_upstream(
    client: openai.OpenAI, streamed: bool
) -> None:
    if streamed:
        with client.chat.completions.stream(
            model=MODEL, messages=MESSAGES, response_format=Person
        ) as stream:
            completion = stream.get_final_completion()
    else:
        completion = client.chat.completions.parse(
            model=MODEL, messages=MESSAGES, response_format=Person
        )
    assert isinstance(completion.choices[0].message.parsed, Person)


def test_tools_and_a_schema_together_call_the_tool_then_answer_valid_json(
    client: openai.OpenAI,
) -> None:
    # An agent with tools and an output type (openai-agents, pydantic-ai): Gemini 2 refuses
    # tools beside a JSON response, so the answer comes through the output function.
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    first = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, tools=tools, response_format=RESPONSE_FORMAT
    )
    (call,) = first.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert first.choices[0].finish_reason == "tool_calls"
    history: Any = [
        *MESSAGES,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    answer = client.chat.completions.create(
        model=MODEL, messages=history, tools=tools, response_format=RESPONSE_FORMAT
    )
    choice = answer.choices[0]
    assert (choice.finish_reason, choice.message.tool_calls) == ("stop", None)
    jsonschema.validate(orjson.loads(choice.message.content or ""), ENFORCED)
