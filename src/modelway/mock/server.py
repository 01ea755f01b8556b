"""``modelway mock``: the mock provider over HTTP, in the OpenAI (chat and Responses),
Anthropic, Ollama and Gemini formats.

Each chat route decodes with the caller's dialect, answers with ``mock.engine`` and
encodes with the same dialect, so the mock speaks exactly what the gateway speaks.
Pacing and faults (``mock.faults``) make it a stand-in for a slow or broken upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelway.dialects.anthropic import AnthropicDialect
from modelway.dialects.base import Dialect
from modelway.dialects.ollama import OllamaDialect, model_load
from modelway.dialects.openai import OpenAIDialect
from modelway.dialects.responses_stream import ResponsesStreamEncoder
from modelway.errors import BadRequest, ModelwayError
from modelway.mock.embeddings import (
    dimensions_asked,
    embedding_inputs,
    gemini_embed_requests,
    ollama_embeddings,
    openai_embeddings,
)
from modelway.mock.engine import (
    MOCK_MODELS,
    check_embedding_size,
    mock_embedding,
    mock_events,
)
from modelway.mock.faults import (
    FAULT_HEADER,
    RETRY_AFTER_HEADER,
    DroppedBody,
    Fault,
    FaultPlan,
    corrupt_chunk,
    fault_error,
    fault_headers,
    parse_faults,
    plan_faults,
)
from modelway.mock.gemini_dialect import GeminiDialect
from modelway.mock.kept_responses import KeptResponses
from modelway.mock.pacing import PacedStream, Pacing
from modelway.mock.responses_dialect import MockResponsesDialect
from modelway.types import ChatRequest, ImagePart, MessageEnd, StreamEvent, fold_events

#: Chunks a truncated stream sends before it stops.
TRUNCATE_AFTER_CHUNKS = 3

#: Builds an embeddings answer body from the request body and the texts to embed.
EmbeddingEncoder = Callable[[dict[str, Any], list[str]], dict[str, Any]]


@dataclass(frozen=True)
class MockSettings:
    """How the mock paces its answers and which faults it injects into every request."""

    latency_ms: float = 0.0
    tokens_per_second: float = 0.0
    fail_rate: float = 0.0
    faults: tuple[str, ...] = ()
    seed: int | None = None


#: How many ``traceparent`` headers ``MockStats`` keeps.
MAX_TRACEPARENTS = 64


@dataclass
class MockStats:
    """What the mock has seen, served as JSON at ``GET /mock/stats``."""

    requests: dict[str, int] = field(default_factory=dict)
    request_count: int = 0
    open_streams: int = 0
    cancelled_streams: int = 0
    last_request_id: str | None = None
    #: Image parts in the last chat request, so tests can see an image arrived.
    last_request_images: int = 0
    #: Requests seen per ``x-mock-fault`` header value (for ``times:<n>``).
    fault_uses: dict[str, int] = field(default_factory=dict)
    #: The ``traceparent`` headers of the latest requests that sent one, oldest first.
    traceparents: list[str] = field(default_factory=list)


class RequestCounter:
    """Counts requests per path, remembers ``x-request-id`` and adds ``x-mock-request-count``."""

    def __init__(self, app: ASGIApp, stats: MockStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stats = self.stats
        path: str = scope["path"]
        # The mock's own control routes stay out of the counts tests compare.
        if not path.startswith("/mock/"):
            stats.request_count += 1
            stats.requests[path] = stats.requests.get(path, 0) + 1
            for name, value in scope["headers"]:
                if name == b"x-request-id":
                    stats.last_request_id = value.decode("latin-1")
                elif name == b"traceparent":
                    stats.traceparents.append(value.decode("latin-1"))
                    del stats.traceparents[:-MAX_TRACEPARENTS]
        count_header = (b"x-mock-request-count", str(stats.request_count).encode())

        async def send_with_count(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), count_header]
            await send(message)

        await self.app(scope, receive, send_with_count)


def create_mock_app(settings: MockSettings) -> Starlette:
    """The mock upstream as an ASGI app; ``ValueError`` if a configured fault is unknown."""
    return MockServer(settings).app


class MockServer:
    """The mock's routes and the state they share (stats, seeded randomness)."""

    def __init__(self, settings: MockSettings) -> None:
        if not 0.0 <= settings.fail_rate <= 1.0:
            raise ValueError(f"fail rate {settings.fail_rate} is not between 0 and 1")
        self.settings = settings
        self.faults: tuple[Fault, ...] = parse_faults(settings.faults)
        self.pacing = Pacing(
            latency=settings.latency_ms / 1000,
            interval=1 / settings.tokens_per_second if settings.tokens_per_second > 0 else 0.0,
        )
        self.rng = random.Random(settings.seed)
        self.stats = MockStats()
        self.openai: Dialect = OpenAIDialect()
        self.responses: Dialect = MockResponsesDialect()
        self.anthropic: Dialect = AnthropicDialect()
        self.ollama: Dialect = OllamaDialect()
        self.gemini: Dialect = GeminiDialect()
        self.kept = KeptResponses()
        kept = self.kept
        routes = [
            Route("/v1/chat/completions", self.openai_chat, methods=["POST"]),
            Route("/v1/responses", self.openai_responses, methods=["POST"]),
            # Azure OpenAI's v1 API, where it serves the Responses API.
            Route("/openai/v1/responses", self.openai_responses, methods=["POST"]),
            *(
                route
                for prefix in ("/v1/responses", "/openai/v1/responses")
                for route in (
                    Route(prefix + "/{response_id}", kept.get, methods=["GET"]),
                    Route(prefix + "/{response_id}", kept.delete, methods=["DELETE"]),
                    Route(prefix + "/{response_id}/input_items", kept.input_items, methods=["GET"]),
                    Route(prefix + "/{response_id}/cancel", kept.cancel, methods=["POST"]),
                )
            ),
            Route("/v1/models", self.openai_models, methods=["GET"]),
            Route("/v1/embeddings", self.openai_embeddings, methods=["POST"]),
            Route("/v1/messages", self.anthropic_messages, methods=["POST"]),
            Route(
                "/openai/deployments/{deployment}/chat/completions",
                self.azure_chat,
                methods=["POST"],
            ),
            Route("/api/chat", self.ollama_chat, methods=["POST"]),
            Route("/api/tags", self.ollama_tags, methods=["GET"]),
            Route("/api/embed", self.ollama_embed, methods=["POST"]),
            Route("/v1beta/models", self.gemini_models, methods=["GET"]),
            Route("/v1beta/models/{model}:generateContent", self.gemini_chat, methods=["POST"]),
            Route(
                "/v1beta/models/{model}:streamGenerateContent", self.gemini_chat, methods=["POST"]
            ),
            Route("/v1beta/models/{model}:batchEmbedContents", self.gemini_embed, methods=["POST"]),
            Route("/mock/stats", self.mock_stats, methods=["GET"]),
        ]
        self.app = Starlette(
            routes=routes,
            middleware=[Middleware(RequestCounter, stats=self.stats)],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.kept.aclose()  # background responses still running stop with the mock

    # --- routes ------------------------------------------------------------------------

    async def openai_chat(self, request: Request) -> Response:
        return await self._chat(request, self.openai)

    async def openai_responses(self, request: Request) -> Response:
        return await self._chat(request, self.responses, keep=self.kept)

    async def azure_chat(self, request: Request) -> Response:
        # Azure names the deployment in the URL and requires an api-version.
        if not request.query_params.get("api-version"):
            return _error_response(self.openai, BadRequest("api-version: required"))
        fields = {"model": request.path_params["deployment"]}
        return await self._chat(request, self.openai, fields)

    async def anthropic_messages(self, request: Request) -> Response:
        return await self._chat(request, self.anthropic)

    async def ollama_chat(self, request: Request) -> Response:
        try:
            body = await _json_body(request)
        except ModelwayError as error:
            return _error_response(self.ollama, error)
        loaded = model_load(body, generate=False) if isinstance(body, dict) else None
        if loaded is not None:  # Ollama's warm-up call, answered as Ollama does
            return Response(loaded, media_type="application/json")
        return await self._chat(request, self.ollama)

    async def gemini_chat(self, request: Request) -> Response:
        # Gemini names the model and streaming in the URL; the dialect reads them from the body.
        stream = request.url.path.endswith(":streamGenerateContent")
        if stream and request.query_params.get("alt") != "sse":
            error = BadRequest("streamGenerateContent: the mock streams only with ?alt=sse")
            return _error_response(self.gemini, error)
        fields = {"model": request.path_params["model"], "stream": stream}
        return await self._chat(request, self.gemini, fields)

    async def gemini_models(self, request: Request) -> Response:
        models = [{"name": f"models/{m}", "displayName": m} for m in MOCK_MODELS]
        return await self._json(request, self.gemini, lambda: {"models": models})

    async def gemini_embed(self, request: Request) -> Response:
        try:
            requests = gemini_embed_requests(await _json_body(request))
            dimensions = dimensions_asked({"dimensions": requests[0].get("outputDimensionality")})
            check_embedding_size(len(requests), dimensions)
        except ModelwayError as error:
            return _error_response(self.gemini, error)
        texts = ["".join(str(p.get("text", "")) for p in r["content"]["parts"]) for r in requests]
        vectors = [{"values": mock_embedding(text, dimensions)} for text in texts]
        return await self._json(request, self.gemini, lambda: {"embeddings": vectors})

    async def openai_models(self, request: Request) -> Response:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "mock"} for m in MOCK_MODELS]
        return await self._json(request, self.openai, lambda: {"object": "list", "data": data})

    async def ollama_tags(self, request: Request) -> Response:
        models = [
            {
                "name": m,
                "model": m,
                "modified_at": "2024-01-01T00:00:00Z",
                "size": 0,
                "digest": "0" * 64,
                "details": {"format": "mock", "family": "mock", "parameter_size": "0B"},
            }
            for m in MOCK_MODELS
        ]
        return await self._json(request, self.ollama, lambda: {"models": models})

    async def openai_embeddings(self, request: Request) -> Response:
        return await self._embeddings(request, self.openai, openai_embeddings)

    async def ollama_embed(self, request: Request) -> Response:
        return await self._embeddings(request, self.ollama, ollama_embeddings)

    async def mock_stats(self, request: Request) -> Response:
        return Response(orjson.dumps(self.stats), media_type="application/json")

    # --- shared steps ------------------------------------------------------------------

    def _plan(self, request: Request) -> FaultPlan:
        """This request's faults; ``BadRequest`` if the header names an unknown one."""
        faults = self.faults
        header = request.headers.get(FAULT_HEADER)
        if header:
            try:
                extra = parse_faults([header])
            except ValueError as error:
                raise BadRequest(str(error)) from None
            limit = next((fault.value for fault in extra if fault.kind == "times"), None)
            seen = self.stats.fault_uses.get(header, 0)
            self.stats.fault_uses[header] = seen + 1
            if limit is None or seen < limit:
                faults = faults + extra
        return plan_faults(
            faults,
            retry_after=request.headers.get(RETRY_AFTER_HEADER),
            fail_rate=self.settings.fail_rate,
            rng=self.rng,
        )

    async def _chat(
        self,
        request: Request,
        dialect: Dialect,
        url_fields: dict[str, Any] | None = None,
        *,
        keep: KeptResponses | None = None,
    ) -> Response:
        try:
            plan = self._plan(request)
            if plan.head_delay:
                await asyncio.sleep(plan.head_delay)
            if plan.error_status is not None:
                return _fault_response(dialect, plan)
            body = await _json_body(request)
            if url_fields and isinstance(body, dict):
                body.update(url_fields)
            chat = dialect.decode_chat(body)
            if keep is not None:
                keep.continue_chat(body, chat)
            events = mock_events(chat, chat.model, dialect.name)
        except ModelwayError as error:
            return _error_response(dialect, error)
        self.stats.last_request_images = sum(
            isinstance(part, ImagePart) for message in chat.messages for part in message.content
        )
        if keep is not None and isinstance(body, dict) and body.get("background") is True:
            folded = fold_events(events)
            delay = self.pacing.latency + plan.first_token_delay + plan.stall
            answer = dialect.encode_response(folded, chat)
            return keep.background(body, chat, answer, folded.message, delay)
        if not chat.stream:
            await self._delay(plan)
            folded = fold_events(events)
            answer = dialect.encode_response(folded, chat)
            if keep is not None:
                answer = keep.keep_answer(body, chat, answer, folded.message)
            return _body_response(answer, plan)
        echo = keep.described(body) if keep is not None else None
        chunks = _stream_chunks(dialect, chat, events, plan, echo)
        if keep is not None:
            keep.keep_stream(body, chat, chunks, fold_events(events).message)
        return PacedStream(chunks, plan, self.pacing, self.stats, dialect.stream_media_type)

    async def _json(
        self, request: Request, dialect: Dialect, answer: Callable[[], Any]
    ) -> Response:
        try:
            plan = self._plan(request)
        except ModelwayError as error:
            return _error_response(dialect, error)
        if plan.error_status is not None:
            return _fault_response(dialect, plan)
        await self._delay(plan)
        return _body_response(orjson.dumps(answer()), plan)

    async def _embeddings(
        self, request: Request, dialect: Dialect, embed: EmbeddingEncoder
    ) -> Response:
        try:
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise BadRequest("request body must be a JSON object")
            texts = embedding_inputs(body.get("input"))
            check_embedding_size(len(texts), dimensions_asked(body))
        except ModelwayError as error:
            return _error_response(dialect, error)
        return await self._json(request, dialect, lambda: embed(body, texts))

    async def _delay(self, plan: FaultPlan) -> None:
        delay = self.pacing.latency + plan.first_token_delay + plan.stall
        if delay > 0:
            await asyncio.sleep(delay)


def _stream_chunks(
    dialect: Dialect,
    chat: ChatRequest,
    events: list[StreamEvent],
    plan: FaultPlan,
    echo: dict[str, Any] | None = None,
) -> list[bytes]:
    """The encoded chunks of a streamed answer, with the plan's truncation and corruption;
    ``echo``: fields every response object of a Responses stream says."""
    encoder = dialect.stream_encoder(chat)
    if echo is not None and isinstance(encoder, ResponsesStreamEncoder):
        encoder.echo = echo
    chunks: list[bytes] = []
    finish: list[bytes] = []
    target = chunks
    for event in events:
        if isinstance(event, MessageEnd):
            # From here on the chunks finish the answer; a truncated stream never sends them.
            target = finish
        encoded = encoder.encode(event)
        if encoded:
            target.append(encoded)
    if plan.truncate:
        chunks = chunks[:TRUNCATE_AFTER_CHUNKS]
    else:
        chunks += finish
        chunks.append(encoder.finish())
    if plan.corrupt:
        chunks.insert(1, corrupt_chunk(dialect.name, dialect.stream_media_type))
    return chunks


async def _json_body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON") from None


def _error_response(dialect: Dialect, error: ModelwayError) -> Response:
    return Response(dialect.encode_error(error), error.status, media_type="application/json")


def _fault_response(dialect: Dialect, plan: FaultPlan) -> Response:
    status = plan.error_status or 500
    body = dialect.encode_error(fault_error(status, plan.retry_after))
    return Response(body, status, headers=fault_headers(plan), media_type="application/json")


def _body_response(body: bytes, plan: FaultPlan) -> Response:
    if plan.drop:
        return DroppedBody(body, media_type="application/json")
    if plan.corrupt or plan.truncate:
        # A complete HTTP message whose JSON stops halfway.
        body = body[: max(1, len(body) // 2)]
    return Response(body, media_type="application/json")
