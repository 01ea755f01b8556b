"""The mock's Gemini dialect reads structured output: ``responseMimeType`` and the schemas.

A request for JSON reaches the mock engine as ``ChatRequest.response_format``, so the mock
answers a Gemini-format structured-output request with JSON valid against the schema, as
it does in every other format. ``responseSchema`` is Gemini's OpenAPI subset and is read
back as the JSON Schema it stands for; the round trips here start from the gateway's own
Gemini adapter, which writes it.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest

from modelway.errors import BadRequest
from modelway.mock.engine import mock_response
from modelway.mock.gemini_dialect import MAX_SCHEMA_DEPTH, GeminiDialect
from modelway.providers.gemini import GeminiAdapter
from modelway.types import ChatRequest, Message, ResponseFormat, TextPart

dialect = GeminiDialect()

#: A schema with what callers' schemas hold: nesting, enums, arrays, nullables, ``$ref``.
PERSON = {
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


def body(**config: Any) -> dict[str, Any]:
    """A ``generateContent`` body with ``config`` as its ``generationConfig``."""
    return {
        "model": "gemini-2.5-flash",
        "contents": [{"role": "user", "parts": [{"text": "Describe a person."}]}],
        "generationConfig": config,
    }


def answer(request: ChatRequest) -> Any:
    """The mock's answer to ``request``, read as JSON."""
    return orjson.loads(mock_response(request, request.model).message.text())


def test_a_response_schema_in_gemini_s_openapi_form_reads_as_json_schema() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING", "description": "who"},
            "age": {"type": "INTEGER", "format": "int32"},
            "nickname": {"type": "STRING", "nullable": True},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
            "kind": {"type": "STRING", "format": "enum", "enum": ["a", "b"]},
        },
        "required": ["name", "age"],
        "propertyOrdering": ["name", "age"],
    }
    request = dialect.decode_chat(body(responseMimeType="application/json", responseSchema=schema))
    assert request.response_format == ResponseFormat(
        type="json_schema",
        schema={
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "who"},
                "age": {"type": "integer", "format": "int32"},
                "nickname": {"type": ["string", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "kind": {"type": "string", "enum": ["a", "b"]},
            },
            "required": ["name", "age"],
            "propertyOrdering": ["name", "age"],
        },
    )


def test_the_mock_answers_a_response_schema_with_json_valid_against_it() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING"},
            "population": {"type": "INTEGER"},
            "landmarks": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 2},
            "capital": {"type": "BOOLEAN"},
        },
        "required": ["city", "population", "landmarks", "capital"],
    }
    request = dialect.decode_chat(body(responseMimeType="application/json", responseSchema=schema))
    value = answer(request)
    assert request.response_format is not None
    jsonschema.validate(value, request.response_format.schema or {})
    assert isinstance(value["population"], int) and isinstance(value["capital"], bool)
    assert len(value["landmarks"]) >= 2


def test_enum_values_gemini_sends_as_strings_read_back_as_their_type() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "level": {"type": "INTEGER", "enum": ["3", "5"]},
            "ratio": {"type": "NUMBER", "enum": ["0.5"]},
            "flag": {"type": "BOOLEAN", "enum": ["true"]},
            "odd": {"type": "INTEGER", "enum": ["three"]},  # unreadable: left as sent
        },
    }
    request = dialect.decode_chat(body(responseSchema=schema))
    assert request.response_format is not None and request.response_format.schema is not None
    properties = request.response_format.schema["properties"]
    assert properties["level"]["enum"] == [3, 5]
    assert properties["ratio"]["enum"] == [0.5]
    assert properties["flag"]["enum"] == [True]
    assert properties["odd"]["enum"] == ["three"]
    assert answer(request)["level"] == 3


def test_a_property_named_like_a_schema_keyword_is_a_property() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "nullable": {"type": "BOOLEAN"},
            "type": {"type": "STRING"},
            "format": {"type": "STRING", "format": "date-time"},
        },
        "required": ["nullable", "type", "format"],
    }
    request = dialect.decode_chat(body(responseSchema=schema))
    assert request.response_format is not None and request.response_format.schema is not None
    assert request.response_format.schema["properties"] == {
        "nullable": {"type": "boolean"},
        "type": {"type": "string"},
        "format": {"type": "string", "format": "date-time"},
    }
    assert answer(request) == {"nullable": True, "type": "mock", "format": "2024-01-01T00:00:00Z"}


def test_response_json_schema_is_taken_as_json_schema() -> None:
    request = dialect.decode_chat(
        body(responseMimeType="application/json", responseJsonSchema=PERSON)
    )
    assert request.response_format == ResponseFormat(type="json_schema", schema=PERSON)
    jsonschema.validate(answer(request), PERSON)


def test_the_mime_type_alone_asks_for_a_json_object() -> None:
    request = dialect.decode_chat(body(responseMimeType="application/json"))
    assert request.response_format == ResponseFormat(type="json_object")
    assert isinstance(answer(request), dict)


@pytest.mark.parametrize("mime_type", [None, "text/plain", "text/x.enum"])
def test_no_json_is_asked_for_without_the_json_mime_type(mime_type: str | None) -> None:
    config = {} if mime_type is None else {"responseMimeType": mime_type}
    assert dialect.decode_chat(body(**config)).response_format is None
    with_schema = {**config, "responseSchema": {"type": "STRING", "enum": ["a"]}}
    expected = (
        None
        if mime_type
        else ResponseFormat(type="json_schema", schema={"type": "string", "enum": ["a"]})
    )
    assert dialect.decode_chat(body(**with_schema)).response_format == expected


def test_proto_style_names_decode_too() -> None:
    raw = {key: value for key, value in body().items() if key != "generationConfig"}
    raw["generation_config"] = {
        "response_mime_type": "application/json",
        "response_schema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
    }
    assert dialect.decode_chat(raw).response_format == ResponseFormat(
        type="json_schema", schema={"type": "object", "properties": {"a": {"type": "string"}}}
    )


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"responseMimeType": 3}, r"generationConfig\.responseMimeType"),
        ({"responseSchema": "OBJECT"}, r"generationConfig\.responseSchema"),
        ({"responseJsonSchema": []}, r"generationConfig\.responseJsonSchema"),
        (
            {"responseSchema": {"type": "OBJECT"}, "responseJsonSchema": {"type": "object"}},
            "cannot both be set",
        ),
    ],
)
def test_malformed_structured_output_settings_are_a_bad_request(
    config: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadRequest, match=field):
        dialect.decode_chat(body(**config))


def test_a_deeply_nested_schema_is_read_to_a_bound_not_to_python_s_limit() -> None:
    schema: dict[str, Any] = {"type": "STRING"}
    for _ in range(2000):
        schema = {"type": "OBJECT", "properties": {"a": schema}}
    request = dialect.decode_chat(body(responseSchema=schema))
    assert request.response_format is not None and request.response_format.schema is not None
    inner = request.response_format.schema
    for _ in range(MAX_SCHEMA_DEPTH):
        assert inner["type"] == "object"
        inner = inner["properties"]["a"]
    assert inner["properties"]["a"]["type"] == "OBJECT"  # past the bound: as sent
    answer(request)  # the example generator has its own bound


# --- the round trip: the gateway's Gemini adapter writes, the mock reads and answers ------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_schema_the_gemini_adapter_sends_is_answered_with_valid_json(stream: bool) -> None:
    canonical = ChatRequest(
        model="gemini-2.5-flash",
        messages=[Message(role="user", content=[TextPart("Describe a person.")])],
        response_format=ResponseFormat(type="json_schema", name="Person", schema=PERSON),
        stream=stream,
    )
    sent = GeminiAdapter().chat_request(canonical, "gemini-2.5-flash")
    assert sent.body is not None
    received = orjson.loads(sent.body)
    assert "responseSchema" in received["generationConfig"]
    request = dialect.decode_chat({**received, "model": "gemini-2.5-flash", "stream": stream})
    assert request.response_format is not None and request.response_format.type == "json_schema"
    # Gemini takes an enum on strings alone: the integer one reaches it named in the
    # description (providers/gemini_schema.py), asked for but not enforced.
    level = received["generationConfig"]["responseSchema"]["properties"]["level"]
    assert level == {"type": "integer", "description": "One of: 3, 5."}
    enforced = {**PERSON, "properties": {**PERSON["properties"], "level": {"type": "integer"}}}
    jsonschema.validate(answer(request), enforced)


def test_json_object_through_the_gemini_adapter_is_answered_with_an_object() -> None:
    canonical = ChatRequest(
        model="gemini-2.5-flash",
        messages=[Message(role="user", content=[TextPart("Any JSON.")])],
        response_format=ResponseFormat(type="json_object"),
    )
    sent = GeminiAdapter().chat_request(canonical, "gemini-2.5-flash")
    assert sent.body is not None
    request = dialect.decode_chat({**orjson.loads(sent.body), "model": "gemini-2.5-flash"})
    assert request.response_format == ResponseFormat(type="json_object")
    assert isinstance(answer(request), dict)
