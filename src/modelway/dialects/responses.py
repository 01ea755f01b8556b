"""The OpenAI Responses API as an inbound dialect: ``POST /v1/responses`` in, responses out.

Decoding is stateless: ``previous_response_id`` and ``store`` are read by the face
(``gateway.response_state`` keeps translated answers and prepends the conversation a
``previous_response_id`` names); ``conversation``, ``item_reference`` items and
``background`` need state the gateway does not keep and are refused with a 400 that
says so.

Translated, a ``namespace`` tool (Codex sends them) becomes one canonical function per
member, named ``<namespace>__<name>``; answers name such a call back by its own name plus
``namespace``, as the API does. Hosted tools (``web_search``, ``file_search``, ...) run on
OpenAI's servers only, so they are left out of a translated request.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from modelway.dialects.base import allowed_tools
from modelway.dialects.openai import encode_error_body
from modelway.dialects.responses_objects import (
    NAMESPACE_SEPARATOR,
    namespaced_names,
    response_object,
)
from modelway.dialects.responses_stream import ResponsesStreamEncoder
from modelway.errors import BadRequest, ModelwayError
from modelway.reasoning import EFFORTS
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

_ROLES: dict[str, Any] = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}
_TOOL_CHOICES = ("auto", "none", "required")
#: Fields that only make sense with state the gateway does not keep.
_STATEFUL_FIELDS = {
    "conversation": "the gateway keeps no conversations; send the whole conversation in `input`",
    "prompt": "stored prompt templates are not supported; send `instructions` and `input`",
}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
#: The tool names every provider accepts (OpenAI's and Anthropic's rule).
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: Tools OpenAI runs itself: no other provider can, so a translated request leaves them out.
_HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use_preview",
        "computer_use",
        "mcp",
        "local_shell",
    }
)


class ResponsesDialect:
    """Callers using the OpenAI Responses API (``client.responses.create``)."""

    name = "responses"
    stream_media_type = "text/event-stream"

    def decode_chat(self, body: Any) -> ChatRequest:
        """The canonical request for a Responses API body; ``BadRequest`` names the bad field."""
        return decode_responses_request(body)

    def encode_response(self, response: ChatResponse, request: ChatRequest | None = None) -> bytes:
        """A ``response`` object; ``request`` gives namespaced calls their namespace back."""
        return orjson.dumps(response_object(response, request))

    def stream_encoder(self, request: ChatRequest) -> ResponsesStreamEncoder:
        """A fresh SSE encoder for one answer to ``request``."""
        return ResponsesStreamEncoder(request)

    def encode_error(self, error: ModelwayError) -> bytes:
        """OpenAI's ``{"error": {...}}`` envelope."""
        return encode_error_body(error)


def decode_responses_request(body: Any) -> ChatRequest:
    """The canonical request for a parsed ``POST /v1/responses`` body."""
    if not isinstance(body, dict):
        raise BadRequest("body: expected a JSON object")
    for field, reason in _STATEFUL_FIELDS.items():
        if body.get(field) is not None:
            raise BadRequest(f"{field}: not supported: {reason}")
    if body.get("background"):
        raise BadRequest("background: not supported: the gateway keeps no response to poll")
    response_format = _text_format(body.get("text"))
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: required, a non-empty string")
    messages = _instructions(body.get("instructions"))
    messages.extend(_input(body.get("input")))
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise BadRequest("max_output_tokens: expected a positive integer")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream: expected a boolean")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise BadRequest("user: expected a string")
    # Fields with no canonical name (include, metadata, truncation, store, ...) are
    # dropped: ``extra`` would reach providers that do not speak this dialect.
    tools = _tools(body.get("tools"))
    tools, tool_choice = _tools_and_choice(body.get("tool_choice"), tools)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise BadRequest("parallel_tool_calls: expected a boolean")
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stream=stream,
        include_usage=True,  # response.completed always carries usage.
        user=user,
        response_format=response_format,
        reasoning=_reasoning(body.get("reasoning")),
        instructions=body.get("instructions") or None,  # a string: _instructions checked it
    )


def _text_format(text: Any) -> ResponseFormat | None:
    """``text.format``: free text, ``json_object`` or ``json_schema`` (name, schema, strict)."""
    if text is None:
        return None
    if not isinstance(text, dict):
        raise BadRequest("text: expected an object")
    spec = text.get("format")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise BadRequest("text.format: expected an object")
    kind = spec.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object")
    if kind != "json_schema":
        raise BadRequest("text.format.type: expected 'text', 'json_object' or 'json_schema'")
    name = _string(spec.get("name"), "text.format.name", empty=False)
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise BadRequest("text.format.schema: required, a JSON Schema object")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise BadRequest("text.format.description: expected a string")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise BadRequest("text.format.strict: expected a boolean")
    return ResponseFormat(
        type="json_schema", name=name, schema=schema, description=description, strict=strict
    )


def _reasoning(raw: Any) -> Reasoning | None:
    """``reasoning.effort``; ``summary`` needs nothing: visible thinking always comes back."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequest("reasoning: expected an object")
    effort = raw.get("effort")
    if effort is None:
        return None
    if not isinstance(effort, str) or effort not in EFFORTS:
        raise BadRequest(f"reasoning.effort: must be one of {', '.join(EFFORTS)}")
    return Reasoning(effort=effort)


def _instructions(raw: Any) -> list[Message]:
    if raw is None or raw == "":
        return []
    if not isinstance(raw, str):
        raise BadRequest("instructions: expected a string")
    return [Message(role="system", content=[TextPart(raw)])]


def _input(raw: Any) -> list[Message]:
    if isinstance(raw, str):
        return [Message(role="user", content=[TextPart(raw)])]
    if not isinstance(raw, list) or not raw:
        raise BadRequest("input: required, a string or a non-empty list of items")
    messages: list[Message] = []
    # A reasoning item belongs to the assistant turn that follows it.
    thought: Message | None = None
    for index, item in enumerate(raw):
        where = f"input.{index}"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: expected an object")
        kind = item.get("type", "message")
        if not isinstance(kind, str):
            raise BadRequest(f"{where}.type: expected a string")
        if kind == "reasoning":
            thought = _reasoning_item(item, where, thought)
            continue
        if kind == "message":
            message = _message(item, where)
            if message.role == "assistant" and thought is not None:
                _take_reasoning(message, thought)
                thought = None
            messages.append(message)
        elif kind == "function_call":
            call = _function_call(item, where)
            # Calls the model made together belong to one assistant turn, after its text.
            if messages and messages[-1].role == "assistant" and thought is None:
                messages[-1].tool_calls.append(call)
            else:
                turn = Message(role="assistant", tool_calls=[call])
                if thought is not None:
                    _take_reasoning(turn, thought)
                    thought = None
                messages.append(turn)
        elif kind == "function_call_output":
            messages.append(_function_call_output(item, where))
        elif kind == "item_reference":
            raise BadRequest(f"{where}.type: item_reference needs stored items; send them in full")
        else:
            raise BadRequest(f"{where}.type: input item type {kind!r} is not supported")
    return messages


def _reasoning_item(item: dict[str, Any], where: str, before: Message | None) -> Message:
    """The thinking a ``reasoning`` item carries (summary and content texts, and its
    ``encrypted_content``: the signature this gateway handed out), added to ``before``."""
    texts: list[str] = []
    for key, part_type in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = item.get(key)
        if parts is None:
            continue
        if not isinstance(parts, list):
            raise BadRequest(f"{where}.{key}: expected a list")
        for number, part in enumerate(parts):
            if not isinstance(part, dict) or part.get("type") != part_type:
                raise BadRequest(f"{where}.{key}.{number}: expected a {part_type} part")
            texts.append(_string(part.get("text"), f"{where}.{key}.{number}.text"))
        if texts:
            break  # content repeats the summary's thinking in full; one of them is enough
    signature = item.get("encrypted_content")
    if signature is not None and not isinstance(signature, str):
        raise BadRequest(f"{where}.encrypted_content: expected a string")
    thought = before or Message(role="assistant")
    if texts:
        thought.reasoning = (thought.reasoning or "") + "".join(texts)
    thought.reasoning_signature = signature or thought.reasoning_signature
    return thought


def _take_reasoning(turn: Message, thought: Message) -> None:
    turn.reasoning = thought.reasoning
    turn.reasoning_signature = thought.reasoning_signature


def _message(item: dict[str, Any], where: str) -> Message:
    role = item.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise BadRequest(
            f"{where}.role: must be user, assistant, system or developer, got {role!r}"
        )
    return Message(role=_ROLES[role], content=_content(item.get("content"), f"{where}.content"))


def _content(raw: Any, where: str) -> list[Part]:
    if isinstance(raw, str):
        return [TextPart(raw)] if raw else []
    if not isinstance(raw, list):
        raise BadRequest(f"{where}: expected a string or a list of content parts")
    parts: list[Part] = []
    for index, part in enumerate(raw):
        path = f"{where}.{index}"
        if not isinstance(part, dict):
            raise BadRequest(f"{path}: expected an object")
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append(TextPart(_string(part.get("text"), f"{path}.text")))
        elif kind == "refusal":
            parts.append(TextPart(_string(part.get("refusal"), f"{path}.refusal")))
        elif kind == "input_image":
            parts.append(_image(part, path))
        else:
            raise BadRequest(f"{path}.type: content part type {kind!r} is not supported")
    return parts


def _image(part: dict[str, Any], where: str) -> ImagePart:
    if part.get("file_id") is not None:
        raise BadRequest(f"{where}.file_id: uploaded files are not supported; send image_url")
    url = _string(part.get("image_url"), f"{where}.image_url")
    if url.startswith("data:") and ";base64," in url:
        # Inline images become base64 data so providers without URL fetching take them.
        header, _, data = url.partition(";base64,")
        return ImagePart(data=data, media_type=header[5:] or "image/png")
    return ImagePart(url=url)


def _function_call(item: dict[str, Any], where: str) -> ToolCall:
    arguments = item.get("arguments", "{}")
    if not isinstance(arguments, str):
        raise BadRequest(f"{where}.arguments: expected a JSON string")
    name = _string(item.get("name"), f"{where}.name", empty=False)
    namespace = item.get("namespace")
    if namespace is not None:
        # A call to a namespace's function, sent back as the API reported it.
        name = _flattened(_string(namespace, f"{where}.namespace", empty=False), name, where)
    return ToolCall(
        id=_string(item.get("call_id"), f"{where}.call_id", empty=False),
        name=name,
        arguments=arguments or "{}",
    )


def _function_call_output(item: dict[str, Any], where: str) -> Message:
    output = item.get("output")
    if isinstance(output, str):
        parts: list[Part] = [TextPart(output)] if output else []
    elif isinstance(output, list):
        parts = _content(output, f"{where}.output")
    else:
        raise BadRequest(f"{where}.output: expected a string or a list of content parts")
    call_id = _string(item.get("call_id"), f"{where}.call_id", empty=False)
    return Message(role="tool", content=parts, tool_call_id=call_id)


def _tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("tools: expected a list")
    tools: list[Tool] = []
    for index, spec in enumerate(raw):
        where = f"tools.{index}"
        if not isinstance(spec, dict):
            raise BadRequest(f"{where}: expected an object")
        kind = spec.get("type")
        if kind == "function":
            tools.append(_function_tool(spec, where))
        elif kind == "namespace":
            tools.extend(_namespace_tools(spec, where))
        elif not (isinstance(kind, str) and _is_hosted(kind)):
            raise BadRequest(
                f"{where}.type: {kind!r} tools are not supported by this gateway; "
                "only function and namespace tools are"
            )
    return tools


def dropped_tools(body: Any) -> list[str]:
    """The hosted tool types a translated request for ``body`` leaves out, in order."""
    raw = body.get("tools") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        return []
    kinds = (spec.get("type") for spec in raw if isinstance(spec, dict))
    return list(dict.fromkeys(k for k in kinds if isinstance(k, str) and _is_hosted(k)))


def _is_hosted(kind: str) -> bool:
    # Dated variants (``web_search_2025_08_26``) are the same hosted tools.
    return kind in _HOSTED_TOOLS or kind.startswith("web_search_")


def _function_tool(spec: dict[str, Any], where: str, namespace: str | None = None) -> Tool:
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise BadRequest(f"{where}.description: expected a string")
    parameters = spec.get("parameters") or _EMPTY_SCHEMA
    if not isinstance(parameters, dict):
        raise BadRequest(f"{where}.parameters: expected a JSON Schema object")
    name = _string(spec.get("name"), f"{where}.name", empty=False)
    if namespace is not None:
        name = _flattened(namespace, name, where)
    # ``strict`` has no canonical name; providers validate arguments their own way.
    return Tool(name=name, description=description, parameters=parameters, namespace=namespace)


def _namespace_tools(spec: dict[str, Any], where: str) -> list[Tool]:
    namespace = _string(spec.get("name"), f"{where}.name", empty=False)
    about = spec.get("description") or ""
    if not isinstance(about, str):
        raise BadRequest(f"{where}.description: expected a string")
    members = spec.get("tools")
    if not isinstance(members, list):
        raise BadRequest(f"{where}.tools: expected a list of function tools")
    tools: list[Tool] = []
    for index, member in enumerate(members):
        path = f"{where}.tools.{index}"
        if not isinstance(member, dict) or member.get("type", "function") != "function":
            raise BadRequest(f"{path}: expected a function tool")
        tool = _function_tool(member, path, namespace)
        if about:
            # The namespace's description is all the model learns about the group.
            tool.description = f"{about}\n\n{tool.description}" if tool.description else about
        tools.append(tool)
    return tools


def _flattened(namespace: str, name: str, where: str) -> str:
    flat = f"{namespace}{NAMESPACE_SEPARATOR}{name}"
    if not _TOOL_NAME.fullmatch(flat):
        # Truncating would make two functions one, or a name the caller never sent.
        raise BadRequest(
            f"{where}.name: namespace {namespace!r} and function {name!r} give the tool name "
            f"{flat!r}, which providers refuse: at most 64 letters, digits, '_' or '-'"
        )
    return flat


def _tools_and_choice(raw: Any, tools: list[Tool]) -> tuple[list[Tool], str | None]:
    """The tools the model may call and the canonical ``tool_choice``."""
    if not isinstance(raw, dict) or raw.get("type") != "allowed_tools":
        return tools, _tool_choice(raw, tools)
    listed = raw.get("tools")
    if not isinstance(listed, list) or len(listed) > len(tools):
        raise BadRequest("tool_choice.tools: a list of the tools offered")
    names = []
    for index, item in enumerate(listed):
        where = f"tool_choice.tools.{index}"
        if not isinstance(item, dict) or item.get("type") != "function":
            raise BadRequest(f"{where}: only function tools can be allowed")
        name = _string(item.get("name"), f"{where}.name", empty=False)
        namespace = item.get("namespace")
        if namespace is not None:
            name = _flattened(_string(namespace, f"{where}.namespace", empty=False), name, where)
        names.append(name)
    return allowed_tools(tools, names, raw.get("mode"), "tool_choice")


def _tool_choice(raw: Any, tools: list[Tool]) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw not in _TOOL_CHOICES:
            raise BadRequest(f"tool_choice: must be auto, none or required, got {raw!r}")
        return raw
    if not isinstance(raw, dict):
        raise BadRequest("tool_choice: expected a string or an object")
    if raw.get("type") != "function":
        raise BadRequest(
            "tool_choice.type: only 'function' and 'allowed_tools' are supported, "
            f"got {raw.get('type')!r}"
        )
    name = _string(raw.get("name"), "tool_choice.name", empty=False)
    namespace = raw.get("namespace")
    if namespace is not None:
        return _flattened(
            _string(namespace, "tool_choice.namespace", empty=False), name, "tool_choice"
        )
    if any(tool.name == name for tool in tools):
        return name
    # A namespace's function chosen by its own name, when only one namespace has it.
    members = [flat for flat, (_, own) in namespaced_names(tools).items() if own == name]
    return members[0] if len(members) == 1 else name


def _string(value: Any, where: str, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise BadRequest(f"{where}: required, a {'string' if empty else 'non-empty string'}")
    return value


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadRequest(f"{name}: expected a number")
    return float(value)
