"""Token estimates for a call whose provider reported no usage (a stream the caller left).

They count the text a model read or wrote, never the JSON around it: a stream of small
deltas is mostly envelope (ids, ``model``, ``created``, ``choices``, ...), often fifty
times its text, and a chat body is mostly structure around a short prompt. The measure
is the UTF-8 bytes of the string values a prompt or an answer holds — its text, tool
names, arguments and descriptions, reasoning — but for those under keys that carry no
text (``_NOT_TEXT``: roles, types, ids, signatures, encrypted or opaque data, citations);
an image or other media part counts as a typical image (``IMAGE_TOKENS``). Object keys
(a tool schema's property names) and per-message framing are not counted. Over
``BYTES_PER_TOKEN`` that is about the text's tokens in English and code, and fewer in
CJK (three bytes a character, about a token each): an estimate that errs low.
"""

from __future__ import annotations

from typing import Any

from modelway.calls.accounts import BYTES_PER_TOKEN
from modelway.tokens import IMAGE_TOKENS
from modelway.types import ChatRequest, ChatResponse, ImagePart, Message, TextPart

#: Keys whose values hold no text the model reads or writes, skipped with all they hold.
_NOT_TEXT = frozenset(
    {
        "role",
        "type",
        "id",
        "index",
        "object",
        "status",
        "model",
        "call_id",
        "tool_call_id",
        "tool_use_id",
        "item_id",
        "finish_reason",
        "logprobs",
        "annotations",
        "citation",
        "citations",
        "cache_control",
        "signature",
        "encrypted_content",
        "data",  # Anthropic's redacted thinking, OpenAI's audio: opaque or base64
    }
)
#: Keys whose values are media (an image, a file, input audio), each a typical image.
_MEDIA = frozenset({"image_url", "images", "source", "input_audio", "file", "file_data"})
_MEDIA_BYTES = IMAGE_TOKENS * BYTES_PER_TOKEN
#: Both, with what a value under each counts instead of its text (one look-up a key).
_SKIPPED = dict.fromkeys(_NOT_TEXT, 0) | dict.fromkeys(_MEDIA, _MEDIA_BYTES)
#: A chat body's fields that make the prompt, in any relayed wire's format.
_PROMPT_FIELDS = ("system", "instructions", "messages", "input", "tools")
#: A whole answer's fields that hold what the model wrote, in any relayed wire's format.
_ANSWER_FIELDS = ("choices", "content", "message", "output")


def text_size(value: Any) -> int:
    """UTF-8 bytes of the text in a JSON value (see the module docstring for what counts).

    Called on deltas of relayed streams, so an object of a few strings costs one call:
    strings are measured in place, only containers recurse.
    """
    if type(value) is dict:
        size = 0
        for key, item in value.items():
            if type(item) is str:
                if key not in _SKIPPED:
                    size += len(item) if item.isascii() else len(item.encode())
                elif item:
                    size += _SKIPPED[key]  # nothing, or an image as a URL
            elif key in _SKIPPED:
                if item:  # nothing, or an image each (Ollama's ``images`` are a list)
                    size += _SKIPPED[key] * (len(item) if type(item) is list else 1)
            elif type(item) is dict or type(item) is list:
                size += text_size(item)
        return size
    if type(value) is str:
        return utf8_size(value)
    if type(value) is list:
        return sum(map(text_size, value))
    return 0


def utf8_size(text: str) -> int:
    """UTF-8 bytes of ``text``, without encoding it when it is ASCII."""
    return len(text) if text.isascii() else len(text.encode())


def prompt_tokens(prompt: ChatRequest | dict[str, Any]) -> int:
    """The estimated tokens of a prompt: a canonical request, or a relayed chat body."""
    if isinstance(prompt, ChatRequest):
        size = sum(message_size(message) for message in prompt.messages)
        tools = [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in prompt.tools
        ]
        size += text_size(tools)
    else:
        size = text_size([prompt.get(field) for field in _PROMPT_FIELDS])
    return size // BYTES_PER_TOKEN


def answer_text_size(answer: Any) -> int:
    """UTF-8 bytes of the text in a whole answer: a canonical one, or a relayed JSON one."""
    if isinstance(answer, ChatResponse):
        return message_size(answer.message)
    if not isinstance(answer, dict):
        return 0
    return text_size([answer.get(field) for field in _ANSWER_FIELDS])


def message_size(message: Message) -> int:
    """UTF-8 bytes of a canonical message's text, tool calls and reasoning; media as images."""
    size = 0
    for part in message.content:
        if isinstance(part, TextPart):
            size += utf8_size(part.text)
        elif isinstance(part, ImagePart):
            size += _MEDIA_BYTES
    for call in message.tool_calls:
        size += utf8_size(call.name) + utf8_size(call.arguments)
    if message.reasoning:
        size += utf8_size(message.reasoning)
    return size
