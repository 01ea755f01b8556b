"""Canonical chat requests as Gemini ``generateContent`` bodies."""

from __future__ import annotations

from typing import Any

import orjson

from modelway.errors import BadRequest
from modelway.providers.base import STRUCTURED_OUTPUT_TOOL
from modelway.providers.gemini_schema import gemini_schema
from modelway.reasoning import budget, effort, gemini_thinks, signature_for
from modelway.types import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    TextPart,
    Tool,
)

#: Gemini 3 rejects replayed function calls without the ``thoughtSignature`` it sent;
#: when the caller did not keep it (``Message.reasoning_signature``), the documented
#: bypass value stands in.
SKIP_THOUGHT_SIGNATURE = "skip_thought_signature_validator"
#: The largest thinking budgets Gemini 2.5 accepts (Pro, the others).
_MAX_BUDGET_PRO = 32768
_MAX_BUDGET = 24576
_MIN_BUDGET_PRO = 128

_FUNCTION_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
#: Where a structured answer's schema is, in the words of callers' errors.
SCHEMA_FIELD = "response_format.json_schema.schema"


def generate_content_body(request: ChatRequest, model: str = "") -> dict[str, Any]:
    """The JSON body of a ``generateContent`` request for ``model``; ``request.extra`` is
    merged last.

    The model is not in the body: Gemini takes it from the URL path.
    """
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    system = request.system_text()
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    wanted = request.response_format
    if wanted is not None and request.tools and request.tool_choice != "none":
        # Gemini 2 refuses function calling beside a JSON response ("Function calling
        # with a response mime type: 'application/json' is unsupported"): a schema is
        # answered through a function; plain JSON mode (no schema) is left to the prompt.
        if wanted.schema is not None:
            body.update(_structured_output_tools(request, wanted, wanted.schema))
        else:
            body.update(_function_tools(request))
        wanted = None
    elif request.tools and wanted is None:
        body.update(_function_tools(request))
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.stop:
        config["stopSequences"] = request.stop
    if wanted is not None:
        config["responseMimeType"] = "application/json"
        if wanted.schema is not None:
            # responseSchema is Gemini's OpenAPI subset, the one its function declarations take.
            config["responseSchema"] = gemini_schema(wanted.schema, SCHEMA_FIELD)
    if request.reasoning is not None and gemini_thinks(model):
        thinking = _thinking_config(request.reasoning, model, request.max_tokens)
        if thinking is not None:
            config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    for key, value in request.extra.items():
        # generationConfig.topK and the like arrive as objects that add to ours.
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


def _thinking_config(
    wanted: Reasoning, model: str, max_tokens: int | None
) -> dict[str, Any] | None:
    """``thinkingConfig``: a level for Gemini 3, a token budget for 2.5; thoughts shown.

    Gemini 2.5's thoughts count toward ``maxOutputTokens``: a budget as large would leave
    no room for the answer (it comes back empty, cut at ``MAX_TOKENS``), so it is kept
    below the caller's ``max_tokens``, as Anthropic requires of its budgets."""
    level = effort(wanted)
    pro = "pro" in model
    if level == "none":
        # Pro models always think; the others stop with a budget of 0.
        return None if pro else {"thinkingBudget": 0}
    if not model.startswith(("gemini-2", "models/gemini-2")):
        return {"includeThoughts": True, "thinkingLevel": "low" if level in _LOW else "high"}
    tokens = min(budget(wanted), _MAX_BUDGET_PRO if pro else _MAX_BUDGET)
    if max_tokens is not None:
        # Pro cannot stop thinking: its smallest budget is 128.
        tokens = max(min(tokens, max_tokens - 1), _MIN_BUDGET_PRO if pro else 0)
    return {"includeThoughts": True, "thinkingBudget": tokens}


_LOW = ("minimal", "low")


def _contents(messages: list[Message]) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if message.role == "system":
            continue
        if message.role == "tool":
            parts = [_function_response(message, call_names, where)]
            parts += _parts([m for m in message.content if isinstance(m, ImagePart)], where)
        else:
            parts = _parts(message.content, where)
            if message.role == "assistant":
                calls = _function_calls(message, where)
                signature = signature_for("gemini", message.reasoning_signature)
                if signature is not None:
                    # Gemini signs the first call of a batch, or the answer's text.
                    signed = calls[0] if calls else parts[0] if parts else None
                    if signed is not None:
                        signed["thoughtSignature"] = signature
                parts += calls
                call_names.update((call.id, call.name) for call in message.tool_calls)
        if not parts:
            continue  # Gemini rejects a turn without parts.
        role = "model" if message.role == "assistant" else "user"
        # Gemini wants user and model turns to alternate, so neighbours merge; this is
        # also how consecutive tool results become one user turn.
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _parts(parts: list[Part] | list[ImagePart], where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for number, part in enumerate(parts):
        if isinstance(part, TextPart):
            if part.text:
                out.append({"text": part.text})
        else:
            out.append(_image(part, f"{where}.content.{number}"))
    return out


def _image(part: ImagePart, where: str) -> dict[str, Any]:
    if part.url is None:
        return {"inlineData": {"mimeType": part.media_type or "image/png", "data": part.data}}
    if part.url.startswith("data:"):
        header, _, data = part.url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64":
            raise BadRequest(f"{where}: image data URLs must be base64-encoded")
        return {"inlineData": {"mimeType": media_type or "image/png", "data": data}}
    # fileData needs a MIME type; Gemini fetches File API and public URIs itself.
    media_type = part.media_type or _guess_image_type(part.url)
    return {"fileData": {"mimeType": media_type, "fileUri": part.url}}


def _guess_image_type(url: str) -> str:
    suffix = url.split("?", 1)[0].rsplit(".", 1)[-1].lower()
    return {"png": "image/png", "webp": "image/webp", "gif": "image/gif"}.get(suffix, "image/jpeg")


def _function_calls(message: Message, where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for number, call in enumerate(message.tool_calls):
        path = f"{where}.tool_calls.{number}.arguments"
        try:
            args = orjson.loads(call.arguments or "{}")
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"{path}: tool call {call.id!r} arguments are not valid JSON") from exc
        if not isinstance(args, dict):
            raise BadRequest(f"{path}: tool call {call.id!r} arguments must be a JSON object")
        function_call: dict[str, Any] = {"name": call.name, "args": args}
        if call.id:
            # Gemini pairs a functionResponse with its call by this id (its own when it gave
            # one; it takes a client's too), by name when there is none.
            function_call["id"] = call.id
        part: dict[str, Any] = {"functionCall": function_call}
        if number == 0:
            # Gemini signs only the first call of a parallel batch.
            part["thoughtSignature"] = SKIP_THOUGHT_SIGNATURE
        parts.append(part)
    return parts


def _function_response(message: Message, names: dict[str, str], where: str) -> dict[str, Any]:
    # Gemini pairs results with calls by id and function name, so the name comes from the call.
    known = names.get(message.tool_call_id or "")
    name = known or message.name
    if not name:
        raise BadRequest(
            f"{where}.tool_call_id: no earlier assistant tool call has id {message.tool_call_id!r}"
        )
    text = message.text()
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    # functionResponse.response must be an object; other output is wrapped.
    function_response: dict[str, Any] = {
        "name": name,
        "response": value if isinstance(value, dict) else {"result": text},
    }
    if known:
        function_response["id"] = message.tool_call_id
    return {"functionResponse": function_response}


def _declaration(tool: Tool) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    if tool.parameters.get("properties"):
        declaration["parameters"] = gemini_schema(tool.parameters, f"tool {tool.name!r} parameters")
    return declaration


def _function_tools(request: ChatRequest) -> dict[str, Any]:
    """``tools`` (the caller's as function declarations) and ``toolConfig``."""
    body: dict[str, Any] = {
        "tools": [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    }
    if request.tool_choice:
        body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
    return body


def _structured_output_tools(
    request: ChatRequest, wanted: ResponseFormat, schema: dict[str, Any]
) -> dict[str, Any]:
    """``tools`` and ``toolConfig`` for a structured answer beside the caller's tools: the
    model must call a function (``ANY``), one of the caller's or the output tool to answer;
    a function the caller named stays the only one allowed."""
    if schema.get("type") != "object" or not schema.get("properties"):
        # A function's parameters must describe an object.
        raise BadRequest(
            "response_format.json_schema.schema: beside tools, the gemini provider needs "
            'a schema of "type": "object" with properties at the top level'
        )
    if any(tool.name == STRUCTURED_OUTPUT_TOOL for tool in request.tools):
        raise BadRequest(f"tools: the name {STRUCTURED_OUTPUT_TOOL!r} is reserved")
    about = (
        "Give your final answer by calling this function; "
        f"its arguments are the answer ({wanted.name})."
    )
    if wanted.description:
        about = f"{about} {wanted.description}"
    output = {
        "name": STRUCTURED_OUTPUT_TOOL,
        "description": about,
        "parameters": gemini_schema(schema, SCHEMA_FIELD),
    }
    declarations = [*(_declaration(t) for t in request.tools), output]
    choice = request.tool_choice
    config = {"mode": "ANY"} if choice in (None, "auto", "required") else _calling_config(choice)
    return {
        "tools": [{"functionDeclarations": declarations}],
        "toolConfig": {"functionCallingConfig": config},
    }


def _calling_config(choice: str) -> dict[str, Any]:
    mode = _FUNCTION_MODES.get(choice)
    if mode is not None:
        return {"mode": mode}
    return {"mode": "ANY", "allowedFunctionNames": [choice]}
