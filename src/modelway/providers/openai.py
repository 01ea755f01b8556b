"""The OpenAI Chat Completions and Embeddings API, and every server that copies it.

This module builds the requests; reading the answers is ``openai_answers``'s.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelway.errors import UndecodableResponse
from modelway.providers.base import (
    HttpRequest,
    embedding_vectors,
    listed_names,
    model_in_path,
    openai_error_code,
)
from modelway.providers.openai_answers import (
    ChunkDecoder,
    parse_chat,
    parse_json,
    parse_object,
    parse_responses_usage,
    parse_usage,
)
from modelway.reasoning import openai_effort
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Usage,
)

#: OpenAI's reasoning models: they refuse ``max_tokens`` (they want
#: ``max_completion_tokens``) and any ``temperature`` or ``top_p`` but the default.
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
_JSON = {"content-type": "application/json"}


def _encode_messages(messages: list[Message], *, replay_reasoning: bool) -> list[dict[str, Any]]:
    """Chat Completions messages. A tool message holds text only, so images a tool
    returned follow the run of tool results as a user message (the results must come right
    after the call that asked for them)."""
    encoded: list[dict[str, Any]] = []
    images: list[ImagePart] = []
    for message in messages:
        if message.role != "tool" and images:
            encoded.append(_tool_images(images))
            images = []
        encoded.append(_encode_message(message, replay_reasoning=replay_reasoning))
        if message.role == "tool":
            images += message.images()
    if images:
        encoded.append(_tool_images(images))
    return encoded


def _tool_images(images: list[ImagePart]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "The tool results' images:"}]
    content += [{"type": "image_url", "image_url": {"url": image.data_url()}} for image in images]
    return {"role": "user", "content": content}


def _encode_message(message: Message, *, replay_reasoning: bool) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.prompt_text(),
        }
    content: Any
    if all(isinstance(part, TextPart) for part in message.content):
        content = message.prompt_text()
    else:
        content = [
            {"type": "text", "text": part.text}
            if isinstance(part, TextPart)
            else {"type": "image_url", "image_url": {"url": part.data_url()}}
            for part in message.content
            if isinstance(part, TextPart | ImagePart)
        ]
    encoded: dict[str, Any] = {"role": message.role, "content": content}
    if message.name:
        encoded["name"] = message.name
    if replay_reasoning and message.role == "assistant" and message.reasoning:
        encoded["reasoning_content"] = message.reasoning
    if message.tool_calls:
        encoded["content"] = content or None
        encoded["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return encoded


def build_chat_body(
    request: ChatRequest, model: str, *, replay_reasoning: bool = False
) -> dict[str, Any]:
    """The Chat Completions body for a canonical request; ``replay_reasoning`` sends an
    assistant turn's thinking back as ``reasoning_content`` (see ``OpenAIAdapter``)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": _encode_messages(request.messages, replay_reasoning=replay_reasoning),
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
    if request.tool_choice in ("auto", "none", "required"):
        body["tool_choice"] = request.tool_choice
    elif request.tool_choice:
        body["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
    if request.tools and request.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = request.parallel_tool_calls  # OpenAI: only with tools
    body.update(_sampling(request, model))
    if request.stop:
        body["stop"] = request.stop
    if request.user:
        body["user"] = request.user
    if request.stream:
        body["stream"] = True
        # Always ask for usage; the gateway drops the extra chunk if the caller did not.
        body["stream_options"] = {"include_usage": True}
    if request.response_format is not None:
        body["response_format"] = encode_response_format(request.response_format)
    if request.reasoning is not None:
        effort = openai_effort(request.reasoning, model)
        if effort is not None:
            body["reasoning_effort"] = effort
    body.update(request.extra)
    return body


def _sampling(request: ChatRequest, model: str) -> dict[str, Any]:
    """``temperature``, ``top_p`` and the output token limit in ``model``'s terms.

    A reasoning model answers 400 to any temperature or top_p but the default
    ("Unsupported value: 'temperature' does not support 0 ... Only the default (1)"), so
    a (typically translated) caller's sampling setting is left out for it.
    """
    reasoning_model = model.startswith(_REASONING_MODELS)
    sampling: dict[str, Any] = {}
    if request.temperature is not None and not reasoning_model:
        sampling["temperature"] = request.temperature
    if request.top_p is not None and not reasoning_model:
        sampling["top_p"] = request.top_p
    if request.max_tokens is not None:
        key = "max_completion_tokens" if reasoning_model else "max_tokens"
        sampling[key] = request.max_tokens
    return sampling


def encode_response_format(wanted: ResponseFormat) -> dict[str, Any]:
    """Chat Completions' ``response_format`` for a canonical one."""
    if wanted.type == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": wanted.name}
    if wanted.description is not None:
        spec["description"] = wanted.description
    if wanted.schema is not None:
        spec["schema"] = wanted.schema
    if wanted.strict is not None:
        spec["strict"] = wanted.strict
    return {"type": "json_schema", "json_schema": spec}


class OpenAIAdapter:
    """Translation for the OpenAI wire format (base URL ends in ``/v1``).

    ``replays_reasoning``: send an assistant turn's thinking back as ``reasoning_content``.
    DeepSeek's thinking mode answers 400 without it on a turn that called tools; OpenAI's
    schema has no such field and strict servers (Cerebras, Groq) refuse it, so only a
    provider that asks for it is sent it.
    """

    wire = "openai"
    #: Whether ``path("responses", ...)`` reaches the upstream's Responses API (relayed to).
    speaks_responses = True
    replays_reasoning = False

    def __init__(self, *, replays_reasoning: bool = False) -> None:
        self.replays_reasoning = replays_reasoning

    def path(self, endpoint: str, model: str) -> str:
        """The URL path of ``endpoint`` (``chat/completions``, ``responses``, ``embeddings``,
        ``models``)."""
        return f"/{endpoint}"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def chat_request(self, request: ChatRequest, model: str) -> HttpRequest:
        body = orjson.dumps(
            build_chat_body(request, model, replay_reasoning=self.replays_reasoning)
        )
        return HttpRequest("POST", self.path("chat/completions", model), body, _JSON)

    def parse_chat(self, body: bytes) -> ChatResponse:
        return parse_chat(body)

    def stream_decoder(self) -> ChunkDecoder:
        return ChunkDecoder()

    def embeddings_request(self, request: EmbeddingRequest, model: str) -> HttpRequest:
        body: dict[str, Any] = {"model": model, "input": request.input}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        return HttpRequest("POST", self.path("embeddings", model), orjson.dumps(body), _JSON)

    def parse_embeddings(self, body: bytes) -> EmbeddingResponse:
        data = parse_object(body)
        items = data.get("data")
        vectors = None
        if isinstance(items, list) and all(isinstance(item, dict) for item in items):
            items = sorted(items, key=_index)
            vectors = embedding_vectors([item.get("embedding") for item in items])
        if vectors is None:
            raise UndecodableResponse(
                "the embeddings answer has no data list of numeric embeddings",
                raw=body.decode("utf-8", "replace"),
            )
        return EmbeddingResponse(
            model=str(data.get("model") or ""),
            vectors=vectors,
            usage=parse_usage(data.get("usage")) or Usage(),
        )

    def models_request(self) -> HttpRequest:
        return HttpRequest("GET", self.path("models", ""))

    def parse_models(self, body: bytes) -> list[str]:
        models = parse_object(body).get("data")
        if not isinstance(models, list):
            raise UndecodableResponse(
                "the models listing has no data list", raw=body.decode("utf-8", "replace")
            )
        return listed_names(models, "id")

    def error_code(self, body: bytes) -> str | None:
        return openai_error_code(body)

    def error_retry_after(self, body: bytes) -> float | None:
        """None: only the ``Retry-After`` header says when to come back."""
        return None

    def error_message(self, body: bytes) -> str:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")[:500]
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        return body.decode("utf-8", "replace")[:500]


class AzureAdapter(OpenAIAdapter):
    """OpenAI on Azure: the model names a deployment, every path carries ``api-version``.

    The base URL is the resource root, ``https://<resource>.openai.azure.com``.
    """

    DEFAULT_API_VERSION = "2024-10-21"
    #: Azure serves the Responses API on its v1 API (``/openai/v1/responses``, no
    #: ``api-version``), not under the deployments; ``model`` in the body names the
    #: deployment, as the relay writes it.
    speaks_responses = True

    def __init__(self, api_version: str | None = None) -> None:
        self.api_version = api_version or self.DEFAULT_API_VERSION

    def path(self, endpoint: str, model: str) -> str:
        if endpoint == "responses":
            return "/openai/v1/responses"
        if endpoint == "models":
            return f"/openai/models?api-version={self.api_version}"
        deployment = model_in_path(model, "azure")
        return f"/openai/deployments/{deployment}/{endpoint}?api-version={self.api_version}"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"api-key": api_key} if api_key else {}


#: The answer side lives in ``openai_answers``; these are its names callers use here.
__all__ = [
    "AzureAdapter",
    "ChunkDecoder",
    "OpenAIAdapter",
    "build_chat_body",
    "encode_response_format",
    "parse_json",
    "parse_responses_usage",
    "parse_usage",
]


def _index(item: dict[str, Any]) -> int:
    """An embedding's place in the answer (its ``index``; 0 when it has none that is a number)."""
    index = item.get("index")
    return index if type(index) is int else 0
