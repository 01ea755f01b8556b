"""The Responses API's ``response`` object and its output items, built from canonical answers.

A non-streamed answer is one ``response_object``; the stream (``responses_stream.py``)
builds the same items as they arrive and ends with the same object. Ids are derived
from the upstream's answer id: ``resp_…`` for the response, ``msg_…``, ``rs_…`` and
``fc_…`` for its items.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from modelway.types import ChatRequest, ChatResponse, StopReason, Tool, ToolCall, Usage

#: Joins a namespace and its function's name into the one canonical tool name.
NAMESPACE_SEPARATOR = "__"
#: Stop reasons that leave a response ``incomplete``, with the reason the API gives.
_INCOMPLETE_REASONS: dict[StopReason, str] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}


def response_object(response: ChatResponse, request: ChatRequest | None = None) -> dict[str, Any]:
    """The ``response`` object for a complete, non-streamed answer to ``request``."""
    namespaces = namespaced_names(request.tools) if request is not None else {}
    response_id = responses_id(response.id)
    status = response_status(response.stop_reason)
    output: list[dict[str, Any]] = []
    message = response.message
    if message.reasoning is not None or message.reasoning_signature is not None:
        item = reasoning_item(reasoning_id(response_id), message.reasoning or "")
        output.append(signed_item(item, message.reasoning_signature))
    text = response.message.text()
    if text or not response.message.tool_calls:
        output.append(message_item(message_id(response_id, len(output)), text, status))
    output.extend(
        function_call_item(call, status, namespaces) for call in response.message.tool_calls
    )
    body = response_body(
        response_id,
        response.model,
        response.created or int(time.time()),
        status=status,
        output=output,
        usage=response.usage,
        request=request,
    )
    return finished_body(body, response.stop_reason)


def responses_id(canonical_id: str) -> str:
    """A ``resp_`` id derived from the upstream's answer id (or a fresh one)."""
    if canonical_id.startswith("resp_"):
        return canonical_id
    return "resp_" + (canonical_id or uuid.uuid4().hex)


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    """An assistant ``message`` output item holding one ``output_text`` part."""
    content = [text_part(text)] if status != "in_progress" else []
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    """A ``reasoning`` output item: the model's visible thinking as one summary part."""
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": item_id, "type": "reasoning", "summary": summary}


def signed_item(item: dict[str, Any], signature: str | None) -> dict[str, Any]:
    """``item`` carrying the reasoning's ``signature``, if any."""
    # The signature rides in ``encrypted_content``, which clients send back unchanged.
    if signature is not None:
        item["encrypted_content"] = signature
    return item


def function_call_item(
    call: ToolCall, status: str, namespaces: dict[str, tuple[str, str]] | None = None
) -> dict[str, Any]:
    """A ``function_call`` output item; ``call_id`` is what the caller answers with.

    A call to a namespace's function (``namespaces``: from ``namespaced_names``) carries
    the function's own name and its ``namespace``, as the API reports it.
    """
    item: dict[str, Any] = {
        "id": "fc_" + call.id,
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }
    grouped = namespaces.get(call.name) if namespaces else None
    if grouped is not None:
        item["namespace"], item["name"] = grouped
    return item


def namespaced_names(tools: list[Tool]) -> dict[str, tuple[str, str]]:
    """Each flattened tool name in ``tools`` -> its namespace and its own name."""
    return {
        tool.name: (tool.namespace, tool.name.removeprefix(tool.namespace + NAMESPACE_SEPARATOR))
        for tool in tools
        if tool.namespace is not None
    }


def usage_object(usage: Usage) -> dict[str, Any]:
    """The Responses API ``usage`` object (``input_tokens`` includes cached tokens)."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_body(
    response_id: str,
    model: str,
    created_at: int,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    request: ChatRequest | None = None,
) -> dict[str, Any]:
    """A ``response`` object with every field the API sends (``request``'s settings echoed)."""
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": usage_object(usage) if usage is not None else None,
        "user": None,
        "metadata": {},
    }
    if request is not None:
        body.update(_request_echo(request))
    return body


def _request_echo(request: ChatRequest) -> dict[str, Any]:
    """The request settings a response repeats back."""
    choice: Any = request.tool_choice or "auto"
    if choice not in ("auto", "none", "required"):
        choice = {"type": "function", "name": choice}
    echo: dict[str, Any] = {
        "max_output_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "tool_choice": choice,
        "tools": [_tool_object(tool) for tool in request.tools],
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "user": request.user,
        "instructions": request.instructions,
    }
    wanted = request.response_format
    if wanted is not None and wanted.type == "json_object":
        echo["text"] = {"format": {"type": "json_object"}}
    elif wanted is not None:
        spec = {"type": "json_schema", "name": wanted.name, "schema": wanted.schema}
        echo["text"] = {
            "format": {**spec, "description": wanted.description, "strict": wanted.strict}
        }
    if request.reasoning is not None and request.reasoning.effort is not None:
        echo["reasoning"] = {"effort": request.reasoning.effort, "summary": None}
    return echo


def _tool_object(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description or None,
        "parameters": tool.parameters,
        "strict": False,
    }


def text_part(text: str) -> dict[str, Any]:
    """An ``output_text`` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_id(response_id: str) -> str:
    """The reasoning item's id in the response ``response_id``."""
    return "rs_" + response_id.removeprefix("resp_")


def message_id(response_id: str, output_index: int) -> str:
    """The id of the message item at ``output_index`` in the response ``response_id``."""
    suffix = response_id.removeprefix("resp_")
    return f"msg_{suffix}" if output_index == 0 else f"msg_{suffix}_{output_index}"


def response_status(stop_reason: StopReason) -> str:
    """``completed``, or ``incomplete`` for an answer cut short (length, content filter)."""
    return "incomplete" if stop_reason in _INCOMPLETE_REASONS else "completed"


def finished_body(body: dict[str, Any], stop_reason: StopReason) -> dict[str, Any]:
    """``body`` saying why it is incomplete, when it is."""
    reason = _INCOMPLETE_REASONS.get(stop_reason)
    if reason is not None:
        body["incomplete_details"] = {"reason": reason}
    return body
