"""A provider endpoint at run time: adapter, base URL, key, extra headers and a pooled client.

This is the only place that sends bytes to a provider and turns transport failures
into ``modelway.errors``; adapters only translate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import httpx
import msgspec

from modelway.errors import ConnectError, Timeout, UpstreamError, UpstreamStatusError
from modelway.providers.base import Adapter, HttpRequest
from modelway.secrets import Secret
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ResponseBuilder,
    StreamEvent,
)


class Backend(Protocol):
    """What the router calls: an HTTP provider or the built-in mock."""

    name: str
    wire: str

    async def complete(self, request: ChatRequest, model: str, request_id: str) -> ChatResponse:
        """A whole answer."""
        ...

    def stream(
        self, request: ChatRequest, model: str, request_id: str
    ) -> AsyncIterator[StreamEvent]:
        """The answer as canonical events; ends after the finish marker or raises."""
        ...

    async def embeddings(
        self, request: EmbeddingRequest, model: str, request_id: str
    ) -> EmbeddingResponse:
        """Vectors for the request's texts."""
        ...

    async def list_models(self) -> list[str]:
        """Model ids the provider offers."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections."""
        ...


class HttpProvider:
    """A provider reached over HTTP."""

    def __init__(
        self,
        name: str,
        adapter: Adapter,
        base_url: str,
        api_key: Secret | None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.wire = adapter.wire
        self.base_url = base_url.rstrip("/")
        self._headers = {
            **adapter.auth_headers(api_key.reveal() if api_key else None),
            **(headers or {}),
        }
        self._client = httpx.AsyncClient(
            timeout=timeout or httpx.Timeout(600.0, connect=10.0, read=120.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"HttpProvider(name={self.name!r}, base_url={self.base_url!r})"

    async def open(self, http: HttpRequest, request_id: str) -> httpx.Response:
        """Send a request and return the streamed response once its status is known good.

        The caller must ``aclose()`` the response. An error status is read, closed and
        raised as ``UpstreamStatusError``.
        """
        headers = {**http.headers, **self._headers, "x-request-id": request_id}
        outgoing = self._client.build_request(
            http.method, self.base_url + http.path, content=http.body, headers=headers
        )
        try:
            response = await self._client.send(outgoing, stream=True)
        except httpx.TimeoutException as exc:
            raise Timeout(
                f"{self.name}: upstream timed out ({type(exc).__name__})", provider=self.name
            ) from None
        except httpx.TransportError as exc:
            raise ConnectError(
                f"{self.name}: cannot reach upstream ({type(exc).__name__})", provider=self.name
            ) from None
        if response.status_code >= 400:
            body = await self._read(response)
            message = self.adapter.error_message(body)
            raise UpstreamStatusError(
                f"{self.name} answered {response.status_code}: {message}",
                upstream_status=response.status_code,
                body=body,
                headers=response.headers,
                provider=self.name,
            )
        return response

    async def _read(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        except httpx.TimeoutException:
            raise Timeout(
                f"{self.name}: upstream timed out mid-answer", provider=self.name
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamError(
                f"{self.name}: connection lost mid-answer ({type(exc).__name__})",
                provider=self.name,
            ) from None
        finally:
            await response.aclose()

    async def request(self, http: HttpRequest, request_id: str) -> bytes:
        """Send a request and return the whole body of a good answer."""
        return await self._read(await self.open(http, request_id))

    async def raw_stream(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The bytes of an opened response as they arrive; closes it at the end."""
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.TimeoutException:
            raise Timeout(f"{self.name}: upstream stream stalled", provider=self.name) from None
        except httpx.TransportError as exc:
            raise UpstreamError(
                f"{self.name}: connection lost mid-stream ({type(exc).__name__})",
                provider=self.name,
            ) from None
        finally:
            await response.aclose()

    async def complete(self, request: ChatRequest, model: str, request_id: str) -> ChatResponse:
        if request.stream:
            # A streamed upstream call folded into one answer (the shared path).
            builder = ResponseBuilder()
            async for event in self.stream(request, model, request_id):
                builder.add(event)
            return builder.result()
        body = await self.request(self.adapter.chat_request(request, model), request_id)
        return self.adapter.parse_chat(body)

    async def stream(
        self, request: ChatRequest, model: str, request_id: str
    ) -> AsyncIterator[StreamEvent]:
        if not request.stream:
            request = _with_stream(request)
        response = await self.open(self.adapter.chat_request(request, model), request_id)
        decoder = self.adapter.stream_decoder()
        async for chunk in self.raw_stream(response):
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.close():
            yield event

    async def embeddings(
        self, request: EmbeddingRequest, model: str, request_id: str
    ) -> EmbeddingResponse:
        body = await self.request(self.adapter.embeddings_request(request, model), request_id)
        return self.adapter.parse_embeddings(body)

    async def list_models(self) -> list[str]:
        return self.adapter.parse_models(await self.request(self.adapter.models_request(), ""))

    async def aclose(self) -> None:
        await self._client.aclose()


def _with_stream(request: ChatRequest) -> ChatRequest:
    return msgspec.structs.replace(request, stream=True)
