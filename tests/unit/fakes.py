"""In-process stand-ins for providers: scripted failures, then a real answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from modelway.errors import ModelwayError
from modelway.providers.upstream import Call
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    MessageEnd,
    MessageStart,
    StreamEvent,
    TextDelta,
    TextPart,
    Usage,
    UsageReport,
)


class ScriptedBackend:
    """Fails with each scripted error in turn, then answers ``"<name> says hi"``."""

    wire = "openai"

    def __init__(self, name: str, failures: Iterable[ModelwayError] = ()) -> None:
        self.name = name
        self.failures = list(failures)
        self.calls: list[tuple[str, Call]] = []

    def _next_failure(self, model: str, call: Call) -> None:
        self.calls.append((model, call))
        if self.failures:
            raise self.failures.pop(0)

    @property
    def text(self) -> str:
        return f"{self.name} says hi"

    async def complete(self, request: ChatRequest, model: str, call: Call) -> ChatResponse:
        self._next_failure(model, call)
        return ChatResponse(
            id="r1",
            model=model,
            message=Message(role="assistant", content=[TextPart(self.text)]),
            usage=Usage(prompt_tokens=1, completion_tokens=3),
        )

    async def stream(
        self, request: ChatRequest, model: str, call: Call
    ) -> AsyncIterator[StreamEvent]:
        self._next_failure(model, call)
        yield MessageStart(id="r1", model=model)
        for word in self.text.split(" "):
            yield TextDelta(word + " ")
        yield MessageEnd("stop")
        yield UsageReport(Usage(prompt_tokens=1, completion_tokens=3))

    async def embeddings(
        self, request: EmbeddingRequest, model: str, call: Call
    ) -> EmbeddingResponse:
        self._next_failure(model, call)
        return EmbeddingResponse(model=model, vectors=[[1.0] for _ in request.input])

    async def list_models(self) -> list[str]:
        return ["m1"]

    async def aclose(self) -> None:
        return None
