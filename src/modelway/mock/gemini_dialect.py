"""The Gemini API as an inbound dialect, for the mock upstream: ``generateContent`` in, answers out.

Gemini names the model (and, by the method, streaming) in the URL, not the body, so
``decode_chat`` expects the route to have put ``"model"`` (and ``"stream": true`` for
``:streamGenerateContent``) into the parsed body first; Gemini bodies use neither name.
Google's JSON parser accepts proto field names too, so ``inline_data`` is read like
``inlineData``.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import orjson

from modelway.errors import BadRequest, ModelwayError
from modelway.mock.gemini_responses import (
    GeminiStreamEncoder,
    error_object,
    response_object,
)
from modelway.reasoning import tagged
from modelway.types import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)

_MODES = {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
#: ``responseSchema`` nested deeper than this is passed on as sent (the example generator
#: has its own bound); recursion stays far from Python's limit whatever the body holds.
MAX_SCHEMA_DEPTH = 64


class GeminiDialect:
    """Speaks the Gemini API to callers (the ``google-genai`` SDKs, Gemini clients)."""

    name = "gemini"
    stream_media_type = "text/event-stream"

    def decode_chat(self, body: Any) -> ChatRequest:
        """The canonical request for a ``generateContent`` body the route added ``model`` to."""
        if not isinstance(body, dict):
            raise BadRequest("body: expected a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model: required in the URL path")
        raw_contents = body.get("contents")
        if not isinstance(raw_contents, list) or not raw_contents:
            raise BadRequest("contents: required, a non-empty list")
        messages = _system(_get(body, "systemInstruction"))
        decoder = _ContentDecoder()
        for index, content in enumerate(raw_contents):
            messages.extend(decoder.content(content, f"contents.{index}"))
        config = _object(_get(body, "generationConfig"), "generationConfig")
        count = _get(config, "candidateCount")
        if count not in (None, 1):
            raise BadRequest("generationConfig.candidateCount: only 1 candidate is supported")
        # topK and safetySettings have no canonical name and are dropped rather than put
        # in ``extra``, which any provider receives.
        return ChatRequest(
            model=model.removeprefix("models/"),
            messages=messages,
            tools=_tools(body.get("tools")),
            tool_choice=_tool_choice(_get(body, "toolConfig")),
            temperature=_number(config, "temperature"),
            top_p=_number(config, "topP"),
            max_tokens=_max_tokens(_get(config, "maxOutputTokens")),
            stop=_strings(_get(config, "stopSequences"), "generationConfig.stopSequences"),
            stream=body.get("stream") is True,
            include_usage=True,  # Gemini chunks always carry usageMetadata.
            response_format=_response_format(config),
            reasoning=_thinking(_get(config, "thinkingConfig")),
        )

    def encode_response(self, response: ChatResponse, request: ChatRequest | None = None) -> bytes:
        """A ``GenerateContentResponse``."""
        return orjson.dumps(response_object(response))

    def stream_encoder(self, request: ChatRequest) -> GeminiStreamEncoder:
        """A fresh SSE encoder for one answer to ``request``."""
        return GeminiStreamEncoder(request.model)

    def encode_error(self, error: ModelwayError) -> bytes:
        """``{"error": {"code", "message", "status"}}``, Google's error shape."""
        return orjson.dumps(error_object(error))


# --- request decoding ----------------------------------------------------------------


def _get(data: dict[str, Any], name: str) -> Any:
    """A field by its JSON name, or by the proto name Google's parser also accepts."""
    value = data.get(name)
    return data.get(_CAMEL.sub("_", name).lower()) if value is None else value


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: must be an object")
    return value


def _system(raw: Any) -> list[Message]:
    if raw is None:
        return []
    if isinstance(raw, str):  # not in the API, but some clients send it
        return [Message(role="system", content=[TextPart(raw)])] if raw else []
    parts = _object(raw, "systemInstruction").get("parts")
    if not isinstance(parts, list):
        raise BadRequest("systemInstruction.parts: required, a list")
    texts = []
    for index, part in enumerate(parts):
        text = _object(part, f"systemInstruction.parts.{index}").get("text")
        if not isinstance(text, str):
            raise BadRequest(f"systemInstruction.parts.{index}.text: required, a string")
        texts.append(text)
    text = "".join(texts)
    return [Message(role="system", content=[TextPart(text)])] if text else []


def _thinking(raw: Any) -> Reasoning | None:
    """``thinkingConfig``: a ``thinkingBudget`` (0 is off) or a ``thinkingLevel``."""
    if raw is None:
        return None
    config = _object(raw, "generationConfig.thinkingConfig")
    tokens = _get(config, "thinkingBudget")
    level = _get(config, "thinkingLevel")
    if tokens is not None:
        if type(tokens) is not int or tokens < -1:
            raise BadRequest("generationConfig.thinkingConfig.thinkingBudget: must be an integer")
        return Reasoning(effort="none") if tokens == 0 else Reasoning(budget_tokens=tokens)
    if level is not None:
        if level not in ("minimal", "low", "medium", "high"):
            raise BadRequest("generationConfig.thinkingConfig.thinkingLevel: unknown level")
        return Reasoning(effort=level)
    return None


class _ContentDecoder:
    """Decodes turns in order, pairing each functionResponse with the call it answers."""

    def __init__(self) -> None:
        # Calls of the latest model turn not yet answered: (id, name).
        self._pending: list[tuple[str, str]] = []

    def content(self, raw: Any, where: str) -> list[Message]:
        content = _object(raw, where)
        role = content.get("role") or "user"
        if role not in ("user", "model", "function", "tool"):
            raise BadRequest(f"{where}.role: must be 'user' or 'model', got {role!r}")
        parts = content.get("parts")
        if not isinstance(parts, list):
            raise BadRequest(f"{where}.parts: required, a list")
        messages: list[Message] = []
        canonical: list[Part] = []
        calls: list[ToolCall] = []
        signature: str | None = None
        for index, part in enumerate(parts):
            path = f"{where}.parts.{index}"
            part = _object(part, path)
            signed = _get(part, "thoughtSignature")
            if isinstance(signed, str) and signed and role == "model" and signature is None:
                signature = tagged("gemini", signed)
            if part.get("thought"):
                continue  # Gemini needs only the signature of earlier thinking
            call, response = _get(part, "functionCall"), _get(part, "functionResponse")
            if call is not None and role == "model":
                calls.append(self._call(call, f"{path}.functionCall", len(calls), where))
            elif response is not None and role != "model":
                if canonical:  # a canonical tool result is its own message
                    messages.append(Message(role="user", content=canonical))
                    canonical = []
                messages.append(self._response(response, f"{path}.functionResponse"))
            elif call is not None or response is not None:
                kind = "functionCall" if call is not None else "functionResponse"
                raise BadRequest(f"{path}.{kind}: not allowed in a {role!r} turn")
            else:
                canonical.append(_part(part, path))
        if role == "model":
            self._pending = [(call.id, call.name) for call in calls]
            return [
                Message(
                    role="assistant",
                    content=canonical,
                    tool_calls=calls,
                    reasoning_signature=signature,
                )
            ]
        if canonical or not messages:
            messages.append(Message(role="user", content=canonical))
        return messages

    def _call(self, raw: Any, where: str, number: int, turn: str) -> ToolCall:
        call = _object(raw, where)
        args = call.get("args", {})
        if not isinstance(args, dict):
            raise BadRequest(f"{where}.args: must be an object")
        call_id = call.get("id") or f"call_{turn.rsplit('.', 1)[-1]}_{number}"
        name = _string(call.get("name"), f"{where}.name")
        return ToolCall(id=str(call_id), name=name, arguments=orjson.dumps(args).decode())

    def _response(self, raw: Any, where: str) -> Message:
        response = _object(raw, where)
        name = _string(response.get("name"), f"{where}.name")
        value = response.get("response", {})
        if not isinstance(value, dict):
            raise BadRequest(f"{where}.response: must be an object")
        call_id = response.get("id")
        match = next(
            (p for p in self._pending if p[0] == call_id or (call_id is None and p[1] == name)),
            None,
        )
        if match is None:
            raise BadRequest(f"{where}.name: no earlier functionCall {name!r} awaits a response")
        self._pending.remove(match)
        # A bare {"result": "..."} or {"output": "..."} is the tool's text output.
        inner = next(iter(value.values())) if len(value) == 1 else None
        single = isinstance(inner, str) and next(iter(value)) in ("result", "output")
        text = inner if single and isinstance(inner, str) else orjson.dumps(value).decode()
        return Message(role="tool", content=[TextPart(text)], tool_call_id=match[0], name=name)


def _part(part: dict[str, Any], where: str) -> Part:
    text = part.get("text")
    if isinstance(text, str):
        return TextPart(text)
    inline = _get(part, "inlineData")
    if inline is not None:
        inline = _object(inline, f"{where}.inlineData")
        media_type = _string(_get(inline, "mimeType"), f"{where}.inlineData.mimeType")
        if not media_type.startswith("image/"):
            raise BadRequest(f"{where}.inlineData.mimeType: only images are supported")
        return ImagePart(
            data=_string(inline.get("data"), f"{where}.inlineData.data"), media_type=media_type
        )
    file = _get(part, "fileData")
    if file is not None:
        file = _object(file, f"{where}.fileData")
        media_type = _get(file, "mimeType")
        if isinstance(media_type, str) and not media_type.startswith("image/"):
            raise BadRequest(f"{where}.fileData.mimeType: only images are supported")
        url = _string(_get(file, "fileUri"), f"{where}.fileData.fileUri")
        return ImagePart(url=url, media_type=media_type)
    known = ", ".join(sorted(k for k in part if k not in ("thoughtSignature", "thought_signature")))
    raise BadRequest(f"{where}: unsupported part ({known or 'empty'}); expected text or an image")


def _tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("tools: must be a list")
    tools: list[Tool] = []
    for index, spec in enumerate(raw):
        where = f"tools.{index}"
        declarations = _get(_object(spec, where), "functionDeclarations")
        if not isinstance(declarations, list):
            kinds = ", ".join(spec) or "empty"
            raise BadRequest(f"{where}: only functionDeclarations are supported, got {kinds}")
        for number, raw_declaration in enumerate(declarations):
            path = f"{where}.functionDeclarations.{number}"
            declaration = _object(raw_declaration, path)
            schema = _get(declaration, "parameters")
            if schema is None:
                schema = _get(declaration, "parametersJsonSchema")
            description = declaration.get("description", "")
            if not isinstance(description, str):
                raise BadRequest(f"{path}.description: must be a string")
            tools.append(
                Tool(
                    name=_string(declaration.get("name"), f"{path}.name"),
                    description=description,
                    parameters=_lower_types(_object(schema, f"{path}.parameters")),
                )
            )
    return tools


def _lower_types(schema: Any) -> Any:
    """Gemini's ``"OBJECT"``-style type names as JSON Schema's ``"object"``."""
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _lower_types(value) for key, value in schema.items()}
    if isinstance(schema.get("type"), str):
        out["type"] = schema["type"].lower()
    return out


def _response_format(config: dict[str, Any]) -> ResponseFormat | None:
    """Structured output from ``responseMimeType`` and ``responseSchema``/``responseJsonSchema``.

    ``responseSchema`` is Gemini's OpenAPI subset (``"OBJECT"``, ``nullable``, enum values
    always strings), read back as the JSON Schema it stands for; ``responseJsonSchema`` is
    JSON Schema already. A schema with no MIME type is JSON too; another MIME type
    (``text/plain``, ``text/x.enum``) asks for no JSON, so gets none.
    """
    mime_type = _get(config, "responseMimeType")
    if mime_type is not None and not isinstance(mime_type, str):
        raise BadRequest("generationConfig.responseMimeType: must be a string")
    json_schema, schema = _get(config, "responseJsonSchema"), _get(config, "responseSchema")
    if json_schema is not None and schema is not None:
        raise BadRequest(
            "generationConfig: responseSchema and responseJsonSchema cannot both be set"
        )
    if mime_type not in (None, "application/json"):
        return None
    if json_schema is not None:
        where = "generationConfig.responseJsonSchema"
        return ResponseFormat(type="json_schema", schema=_object(json_schema, where))
    if schema is not None:
        where = "generationConfig.responseSchema"
        return ResponseFormat(type="json_schema", schema=_openapi_schema(_object(schema, where)))
    return ResponseFormat(type="json_object") if mime_type is not None else None


#: Gemini's enum values are strings whatever the type; these types read them back.
_ENUM_VALUES = {"true": True, "false": False}


def _enum_value(kind: str, value: Any) -> Any:
    """An enum value Gemini sent as a string, as the ``kind`` of value it stands for."""
    if not isinstance(value, str):
        return value
    if kind == "boolean":
        return _ENUM_VALUES[value.lower()]
    return int(value) if kind == "integer" else float(value)


def _openapi_schema(schema: Any, depth: int = 0) -> Any:
    """A Gemini ``Schema`` (OpenAPI 3.0 subset) as JSON Schema.

    Type names are lowercased, ``nullable: true`` becomes a ``[type, "null"]`` type list
    and the string values of a non-string ``enum`` become numbers or booleans again.
    Only the fields that hold schemas are walked, and no deeper than ``MAX_SCHEMA_DEPTH``.
    """
    if not isinstance(schema, dict) or depth > MAX_SCHEMA_DEPTH:
        return schema
    out = {key: value for key, value in schema.items() if key != "nullable"}
    properties = schema.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {
            name: _openapi_schema(value, depth + 1) for name, value in properties.items()
        }
    if "items" in schema:
        out["items"] = _openapi_schema(schema["items"], depth + 1)
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list):
            out[combinator] = [_openapi_schema(option, depth + 1) for option in options]
    kind = schema.get("type")
    if isinstance(kind, str):
        kind = out["type"] = kind.lower()
        if kind == "type_unspecified":
            del out["type"]
        enum = schema.get("enum")
        if kind in ("integer", "number", "boolean") and isinstance(enum, list):
            with contextlib.suppress(KeyError, ValueError):  # unreadable: left as sent
                out["enum"] = [_enum_value(kind, value) for value in enum]
        if schema.get("nullable") is True and kind != "type_unspecified":
            out["type"] = [kind, "null"]
    if schema.get("format") == "enum":
        del out["format"]  # Gemini's marker for a string enum, not a JSON Schema format
    return out


def _tool_choice(raw: Any) -> str | None:
    config = _object(_get(_object(raw, "toolConfig"), "functionCallingConfig"), "toolConfig")
    mode = config.get("mode")
    if mode is None or mode == "MODE_UNSPECIFIED":
        return None
    if mode not in _MODES:
        raise BadRequest(
            f"toolConfig.functionCallingConfig.mode: must be AUTO, ANY or NONE, got {mode!r}"
        )
    where = "toolConfig.functionCallingConfig.allowedFunctionNames"
    names = _strings(_get(config, "allowedFunctionNames"), where)
    # One allowed name is a forced call; several can only be "any tool" canonically.
    return names[0] if mode == "ANY" and len(names) == 1 else _MODES[mode]


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where}: required, a non-empty string")
    return value


def _number(config: dict[str, Any], name: str) -> float | None:
    value = _get(config, name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadRequest(f"generationConfig.{name}: must be a number")
    return float(value)


def _max_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest("generationConfig.maxOutputTokens: must be a positive integer")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"{where}: must be a list of strings")
    return list(value)
