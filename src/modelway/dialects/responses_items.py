"""A kept conversation as the Responses API's input items (``GET /v1/responses/{id}/input_items``).

The inverse of the Responses dialect's ``input`` decoding: each canonical message of the
conversation a response was made from becomes the items a caller would have sent for it
— a user or system ``message`` with ``input_text`` and ``input_image`` parts, an assistant
turn as its ``reasoning``, ``message`` (``output_text``) and ``function_call`` items, a
tool's result as a ``function_call_output``. Item ids are derived from the response's id
and the item's place, so they stay the same from one page to the next.
"""

from __future__ import annotations

from typing import Any

from modelway.dialects.responses_objects import function_call_item, signed_item, text_part
from modelway.types import ImagePart, Message, Part, TextPart

#: The most items one page gives, and how many when the caller does not say.
MAX_PAGE = 100
DEFAULT_PAGE = 20


def input_items(messages: list[Message], response_id: str) -> list[dict[str, Any]]:
    """The items of ``messages``, in conversation order."""
    tag = response_id.removeprefix("resp_")
    items: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message.role == "tool":
            items.append(
                {
                    "id": f"fco_{tag}_{index}",
                    "type": "function_call_output",
                    "call_id": message.tool_call_id or "",
                    "output": message.text(),
                    "status": "completed",
                }
            )
        elif message.role == "assistant":
            items += _assistant_items(message, f"{tag}_{index}")
        else:
            items.append(
                {
                    "id": f"msg_{tag}_{index}",
                    "type": "message",
                    "role": message.role,
                    "status": "completed",
                    "content": [_input_part(part) for part in message.content],
                }
            )
    return items


def _assistant_items(message: Message, suffix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if message.reasoning or message.reasoning_signature:
        summary = [{"type": "summary_text", "text": message.reasoning}] if message.reasoning else []
        reasoning = {"id": f"rs_{suffix}", "type": "reasoning", "summary": summary}
        items.append(signed_item(reasoning, message.reasoning_signature))
    text = message.text()
    if text:
        items.append(
            {
                "id": f"msg_{suffix}",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [text_part(text)],
            }
        )
    for number, call in enumerate(message.tool_calls):
        item = function_call_item(call, "completed")
        item["id"] = f"fc_{suffix}_{number}"  # call ids can repeat (Ollama's call_0 each turn)
        items.append(item)
    return items


def _input_part(part: Part) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    assert isinstance(part, ImagePart)
    return {"type": "input_image", "image_url": part.data_url(), "detail": "auto"}


def items_page(
    items: list[dict[str, Any]], *, limit: int, descending: bool, after: str | None
) -> dict[str, Any]:
    """One page of ``items`` as the API lists them: ``limit`` items after the one named
    ``after`` (``ValueError`` when none is), newest first when ``descending``."""
    ordered = items[::-1] if descending else items
    start = 0
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise ValueError(after)
        start = ids.index(after) + 1
    page = ordered[start : start + limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": start + limit < len(ordered),
    }
