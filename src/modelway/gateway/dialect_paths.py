"""Which wire format each path speaks: the one table behind the chat routes and the errors.

``CHAT_PATHS`` lists the chat calls; ``gateway.app`` serves a POST to one of them
directly (ASGI), ``gateway.rsgi`` natively (RSGI), and ``chat_routes`` gives Starlette
the same paths (so a GET is a 405 in the usual shape). ``error_dialect`` says in which
format a path's callers expect an error (a refused key, say); ``models_dialect`` in which
a ``/v1/models`` caller expects the listing, the one path two dialects share.
"""

from __future__ import annotations

from modelway.calls.relay import Headers
from modelway.dialects.anthropic import AnthropicDialect
from modelway.dialects.base import Dialect
from modelway.dialects.completions import CompletionsDialect
from modelway.dialects.ollama import OllamaDialect
from modelway.dialects.ollama_generate import OllamaGenerateDialect
from modelway.dialects.openai import OpenAIDialect
from modelway.dialects.responses import ResponsesDialect

OPENAI: Dialect = OpenAIDialect()
RESPONSES: Dialect = ResponsesDialect()
COMPLETIONS: Dialect = CompletionsDialect()
ANTHROPIC: Dialect = AnthropicDialect()
OLLAMA: Dialect = OllamaDialect()
OLLAMA_GENERATE: Dialect = OllamaGenerateDialect()

#: Chat calls, by path: each answered in its own dialect by any provider.
CHAT_PATHS: dict[str, Dialect] = {
    "/v1/chat/completions": OPENAI,
    "/v1/responses": RESPONSES,
    "/v1/completions": COMPLETIONS,
    "/v1/messages": ANTHROPIC,
    "/api/chat": OLLAMA,
    "/api/generate": OLLAMA_GENERATE,
}
#: Embeddings, by path: metered calls too, their key checked by ``AuthMiddleware``.
EMBEDDING_PATHS: dict[str, Dialect] = {"/v1/embeddings": OPENAI, "/api/embed": OLLAMA}
#: Every other path that has a dialect of its own, by prefix (the rest speak OpenAI's).
_PREFIXES: tuple[tuple[str, Dialect], ...] = (("/v1/messages", ANTHROPIC), ("/api/", OLLAMA))


#: Called by OpenAI's SDK and Anthropic's alike (``GET /v1/models``, ``/v1/models/{id}``).
_MODELS_PATH = "/v1/models"


def models_dialect(headers: Headers) -> Dialect:
    """The format of a ``/v1/models`` caller: Anthropic's SDK sends ``anthropic-version``
    with every request, OpenAI's never does."""
    return ANTHROPIC if headers.get("anthropic-version") is not None else OPENAI


def error_dialect(path: str, headers: Headers) -> Dialect:
    """The format in which a path's callers expect an error (``headers`` tell the
    dialect of a ``/v1/models`` caller)."""
    dialect = CHAT_PATHS.get(path)
    if dialect is not None:
        return dialect
    if path == _MODELS_PATH or path.startswith(_MODELS_PATH + "/"):
        return models_dialect(headers)
    for prefix, prefixed in _PREFIXES:
        if path.startswith(prefix):
            return prefixed
    return OPENAI
