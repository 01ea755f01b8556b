"""Offline token estimates, for when a provider reports no usage and for ``count_tokens``.

Two measures, for two needs. ``count_text_tokens`` and ``estimate_prompt_tokens`` count
with OpenAI's ``cl100k_base`` BPE from ``bpe-openai``, which ships its data (no download
at run time): for ``count_tokens`` and the web chat. The tokenizer costs about 100 MB and
a second to load, so it is loaded on first use only: an idle worker never pays for it,
and a gateway's calls never load it.

A metered call whose provider reported no usage (a stream the caller left) is charged
by ``estimated_usage``, from the text's size alone, never the JSON around it: a stream
of small deltas is mostly envelope (ids, ``model``, ``created``, ``choices``, ...),
often fifty times its text, and a chat body is mostly structure around a short prompt.
The measure is the UTF-8 bytes of the string values a prompt or an answer holds — its
text, tool names, arguments and descriptions, reasoning — but for those under keys that
carry no text (``_NOT_TEXT``: roles, types, ids, signatures, encrypted or opaque data,
citations); an image or other media part counts as a typical image (``IMAGE_TOKENS``).
Object keys (a tool schema's property names) and per-message framing are not counted.
Over ``BYTES_PER_TOKEN`` that is about the text's tokens in English and code, and fewer
in CJK (three bytes a character, about a token each): an estimate that errs low.

Other vendors tokenize differently, so every count made here is marked estimated.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import orjson

from modelway.types import ChatRequest, ChatResponse, ImagePart, Message, TextPart, Usage

#: Per-message framing tokens (role and separators), as OpenAI's cookbook counts them.
MESSAGE_OVERHEAD = 3
#: A typical image's cost; real costs depend on size and vendor.
IMAGE_TOKENS = 765
#: UTF-8 bytes a token, for estimates by size: a reservation at admission
#: (``calls.accounts``), a call's usage when its provider reported none.
BYTES_PER_TOKEN = 4


@functools.cache
def _encoding() -> Any:
    import bpe_openai

    with warnings.catch_warnings():
        # bpe-openai reads its bundled data with a deprecated importlib.resources call.
        warnings.simplefilter("ignore", DeprecationWarning)
        return bpe_openai.get_encoding("cl100k_base")


def decode_tokens(ids: list[int]) -> str | None:
    """The text of ``cl100k_base`` token ids (how OpenAI's embedding models and the clients
    that tokenize for them count), or None when one is no token of it."""
    encoding = _encoding()
    if not all(0 <= token < encoding.n_vocab for token in ids):
        return None
    try:
        text: str = encoding.decode(ids)
    except Exception:  # a special token's id, or one the table lacks
        return None
    return text


#: Characters counted at a time: the encoder refuses inputs of a million characters and
#: more, and counts of over 200,000 tokens; 40,000 characters stay under both (at most
#: four tokens a character).
_COUNT_CHUNK = 40_000
#: Characters counted exactly; past them the count is extrapolated from theirs. Encoding
#: costs up to ~20 ms per 40,000 characters (a long run of one letter), on the event
#: loop: a 10 MB body would hold it for seconds.
_COUNTED_EXACTLY = 200_000


def count_text_tokens(text: str) -> int:
    """Tokens in ``text``: a long text counted in pieces (a few more at their seams) up to
    ``_COUNTED_EXACTLY`` characters and extrapolated beyond; a piece the encoder still
    refuses is estimated from its UTF-8 size."""
    if not text:
        return 0
    encode = _encoding().encode
    if len(text) <= _COUNT_CHUNK:
        return _counted(encode, text)
    counted = sum(
        _counted(encode, text[start : start + _COUNT_CHUNK])
        for start in range(0, min(len(text), _COUNTED_EXACTLY), _COUNT_CHUNK)
    )
    if len(text) <= _COUNTED_EXACTLY:
        return counted
    return -(-counted * len(text) // _COUNTED_EXACTLY)


def _counted(encode: Any, piece: str) -> int:
    try:
        return len(encode(piece))
    except Exception:  # the encoder's own limits (``TokenLimitError``, ``ValueError``)
        return -(-utf8_size(piece) // BYTES_PER_TOKEN)


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Tokens the request's messages and tool definitions will take as a prompt."""
    total = 3  # the reply's priming
    for message in request.messages:
        total += MESSAGE_OVERHEAD + count_text_tokens(message.text())
        total += sum(IMAGE_TOKENS for part in message.content if isinstance(part, ImagePart))
        for call in message.tool_calls:
            total += count_text_tokens(call.name) + count_text_tokens(call.arguments)
    if request.tools:
        schema = [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in request.tools
        ]
        total += count_text_tokens(orjson.dumps(schema).decode())
    return total


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


def estimated_usage(
    prompt: ChatRequest | dict[str, Any] | None, request_bytes: int, answer_size: int
) -> Usage:
    """A call's usage when its provider reported none: ``prompt`` (a canonical request or
    a relayed body; None: the body's ``request_bytes``, as for embeddings, whose input is
    all text) and ``answer_size``, the UTF-8 bytes of the answer's text."""
    return Usage(
        prompt_tokens=request_bytes // BYTES_PER_TOKEN if prompt is None else prompt_tokens(prompt),
        completion_tokens=answer_size // BYTES_PER_TOKEN,
        estimated=True,
    )
