"""Offline token estimates, for when a provider reports no usage and for ``count_tokens``.

Counts with OpenAI's ``cl100k_base`` BPE from ``bpe-openai``, which ships its data (no
download at run time). Other vendors tokenize differently, so every count made here
is marked estimated. The tokenizer costs about 100 MB and a second to load, so it is
loaded on first use only: an idle worker never pays for it.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import orjson

from modelway.types import ChatRequest, ImagePart

#: Per-message framing tokens (role and separators), as OpenAI's cookbook counts them.
MESSAGE_OVERHEAD = 3
#: A typical image's cost; real costs depend on size and vendor.
IMAGE_TOKENS = 765


@functools.cache
def _encoding() -> Any:
    import bpe_openai

    with warnings.catch_warnings():
        # bpe-openai reads its bundled data with a deprecated importlib.resources call.
        warnings.simplefilter("ignore", DeprecationWarning)
        return bpe_openai.get_encoding("cl100k_base")


def count_text_tokens(text: str) -> int:
    """Tokens in ``text``."""
    if not text:
        return 0
    return len(_encoding().encode(text))


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
