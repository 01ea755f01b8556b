"""What a body asks that the canonical form does not carry, where it would change the answer.

A call the response cache applies to is translated through the canonical form even when
its provider speaks the caller's format (the cache keeps canonical answers). A body that
asks for something that form drops — more than one choice, log probabilities, Anthropic's
``top_k`` or prompt-caching breakpoints, Ollama's sampling options — would then be
answered differently than relayed, and requests that differ only there would share one
cache entry. ``translation_loses`` says so, and such a call goes past the cache
(``gateway.chat``, which also lets a Responses call that continues a response OpenAI
keeps go past it), relayed as it came.

Only read when a cache is configured; bounded by the body the caller sent.
"""

from __future__ import annotations

from typing import Any

#: Chat Completions fields whose answer the canonical form cannot give back.
_OPENAI_ANSWER_SHAPES = ("audio", "modalities", "prediction", "web_search_options")
#: Ollama ``options`` the canonical form carries (``num_predict`` is ``max_tokens``).
_OLLAMA_CARRIED_OPTIONS = frozenset({"temperature", "top_p", "num_predict", "stop"})


def translation_loses(dialect: str, body: dict[str, Any]) -> bool:
    """Whether decoding ``body`` (of ``dialect``) drops something that shapes its answer."""
    if dialect == "openai":
        return _openai_loses(body)
    if dialect == "anthropic":
        return "top_k" in body or _has_cache_breakpoint(body)
    if dialect in ("ollama", "ollama-generate"):
        options = body.get("options")
        return isinstance(options, dict) and not options.keys() <= _OLLAMA_CARRIED_OPTIONS
    return False


def _openai_loses(body: dict[str, Any]) -> bool:
    if body.get("n") not in (None, 1) or body.get("logprobs") or body.get("top_logprobs"):
        return True
    if any(body.get(name) is not None for name in _OPENAI_ANSWER_SHAPES):
        return True
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                image = part.get("image_url") if isinstance(part, dict) else None
                if isinstance(image, dict) and image.get("detail") not in (None, "auto"):
                    return True
    return False


def _has_cache_breakpoint(body: dict[str, Any]) -> bool:
    """Whether any system block, message block, tool or the body marks ``cache_control``."""
    if "cache_control" in body:
        return True
    blocks: list[Any] = []
    for name in ("system", "tools"):
        value = body.get(name)
        if isinstance(value, list):
            blocks += value
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):
                blocks += content
    return any(isinstance(block, dict) and "cache_control" in block for block in blocks)
