"""The built-in ``mock`` provider: deterministic answers in-process, no key, no network."""

from __future__ import annotations

from collections.abc import AsyncIterator

from modelway.mock.engine import MOCK_MODELS, mock_embeddings, mock_events, mock_response
from modelway.providers.upstream import Call
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    MessageStart,
    StreamEvent,
    Usage,
)


class MockProvider:
    """Answers from ``modelway.mock.engine``: ``mock/echo`` echoes, other names fixed text."""

    name = "mock"
    wire = "mock"

    def __repr__(self) -> str:
        return "MockProvider()"

    async def complete(self, request: ChatRequest, model: str, call: Call) -> ChatResponse:
        response = mock_response(request, model)
        response.model = f"mock/{model}"
        return response

    async def stream(
        self, request: ChatRequest, model: str, call: Call
    ) -> AsyncIterator[StreamEvent]:
        for event in mock_events(request, model):
            if isinstance(event, MessageStart):
                event = MessageStart(id=event.id, model=f"mock/{model}")
            yield event

    async def embeddings(
        self, request: EmbeddingRequest, model: str, call: Call
    ) -> EmbeddingResponse:
        vectors = mock_embeddings(request.input, request.dimensions)
        tokens = sum(len(text.split()) for text in request.input)
        return EmbeddingResponse(model=model, vectors=vectors, usage=Usage(prompt_tokens=tokens))

    async def list_models(self) -> list[str]:
        return list(MOCK_MODELS)

    async def aclose(self) -> None:
        return None
