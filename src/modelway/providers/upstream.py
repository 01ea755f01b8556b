"""A provider endpoint at run time: adapter, base URL, key, extra headers and a transport.

Adapters only translate; the transport only moves bytes; this module joins them and
enforces each call's timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from http import HTTPStatus
from typing import NamedTuple, Protocol

import msgspec

from modelway.config import Timeouts
from modelway.config.masking import shown_url
from modelway.deadlines import deadline_at
from modelway.errors import (
    StreamTruncated,
    Timeout,
    UndecodableResponse,
    UpstreamError,
    UpstreamStatusError,
)
from modelway.providers.base import Adapter, HttpRequest
from modelway.providers.redaction import MASK, MIN_SECRET_LENGTH, redactor_for
from modelway.providers.transport import (
    AiohttpTransport,
    Transport,
    UpstreamRequest,
    UpstreamResponse,
)
from modelway.providers.watchdog import ReadWatchdog
from modelway.secrets import Secret
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ResponseBuilder,
    StreamEvent,
)

#: Adds trace context (``traceparent``) to each upstream request's headers: set by
#: ``observability.tracing`` when traces are on, None otherwise (one check per request).
trace_headers: Callable[[dict[str, str]], None] | None = None


class Call(NamedTuple):
    """Per-call settings every backend receives: the request id and the time allowed."""

    request_id: str
    timeouts: Timeouts = Timeouts()


class Backend(Protocol):
    """What the router calls: an HTTP provider or the built-in mock."""

    name: str
    wire: str

    async def complete(self, request: ChatRequest, model: str, call: Call) -> ChatResponse:
        """A whole answer."""
        ...

    def stream(self, request: ChatRequest, model: str, call: Call) -> AsyncIterator[StreamEvent]:
        """The answer as canonical events; ends after the finish marker or raises."""
        ...

    async def embeddings(
        self, request: EmbeddingRequest, model: str, call: Call
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
    """A provider reached over HTTP: adapter + base URL + key + a pooled transport.

    ``quote_errors=False`` (a provider connected at run time, whose URL came from a
    caller): an upstream error is its status alone, never its body (``open``).
    """

    def __init__(
        self,
        name: str,
        adapter: Adapter,
        base_url: str,
        api_key: Secret | None,
        *,
        headers: Mapping[str, str] | None = None,
        transport: Transport | None = None,
        quote_errors: bool = True,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.wire = adapter.wire
        self.base_url = base_url.rstrip("/")
        self._headers = {
            **adapter.auth_headers(api_key.reveal() if api_key else None),
            **(headers or {}),
        }
        self._transport: Transport = transport or AiohttpTransport()
        self._key = api_key.reveal() if api_key else ""
        #: The key as it is kept out of what the upstream answers (``hidden``).
        self._masked_key = self._key.encode() if len(self._key) >= MIN_SECRET_LENGTH else b""
        self._quote_errors = quote_errors

    def __repr__(self) -> str:
        return f"HttpProvider(name={self.name!r}, base_url={shown_url(self.base_url)!r})"

    def hidden(self, body: bytes) -> bytes:
        """``body`` with this provider's key masked, should the upstream quote it (a whole
        answer, an error's body; streams are masked as they are read: ``raw_stream``)."""
        key = self._masked_key
        return body.replace(key, MASK) if key and key in body else body

    def attributed(self, error: UpstreamError) -> UpstreamError:
        """The transport's error, naming this provider."""
        error.provider = self.name
        error.message = f"{self.name}: {error.message}"
        error.args = (error.message,)
        return error

    async def open(
        self, http: HttpRequest, call: Call, *, whole: bool = False, started: float | None = None
    ) -> UpstreamResponse:
        """Send a request and return the response once its status is known good.

        The caller must ``aclose()`` it. An error status is read, closed and raised as
        ``UpstreamStatusError``. ``whole`` asks the transport to bound the whole exchange
        by the total timeout (for answers read at once, not streamed); a stream's head
        may take neither ``first_token`` nor ``total`` counted from ``started`` (the
        event loop's time the attempt began, which ``raw_stream`` then counts from too;
        now when not given).
        """
        limits = call.timeouts
        headers = (
            {**http.headers, **self._headers, "x-request-id": call.request_id}
            if call.request_id
            else {**http.headers, **self._headers}
        )
        if trace_headers is not None:
            trace_headers(headers)
        request = UpstreamRequest(
            http.method,
            self.base_url + http.path,
            headers,
            http.body,
            connect_timeout=limits.connect,
            # Streams are timed chunk by chunk in ``raw_stream``; whole answers by ``total``.
            total_timeout=limits.total if whole else None,
        )
        try:
            if whole:
                response = await self._transport.send(request)
            else:
                # A stream's reads are timed once its head has come; the head itself may
                # take no longer than the first token may (an upstream that accepts and
                # never answers held the call, and its fallbacks, forever), nor than the
                # whole answer may. One deadline table for every call, not a timer each.
                if started is None:
                    started = asyncio.get_running_loop().time()
                head_limit = min(limits.first_token, limits.total)
                async with deadline_at(started + head_limit) as head:
                    response = await self._transport.send(request)
        except UpstreamError as error:
            raise self.attributed(error) from None
        except TimeoutError:
            if whole or not head.expired:
                raise
            waited_for = (
                f"the whole answer ({limits.total:g} s total)"
                if limits.total < limits.first_token
                else f"the first token ({limits.first_token:g} s)"
            )
            raise Timeout(
                f"{self.name}: upstream too slow: waited longer than allowed for {waited_for}",
                provider=self.name,
            ) from None
        if response.status >= 400:
            if not self._quote_errors:
                await response.aclose()  # unread: whatever it says stays there
                raise UpstreamStatusError(
                    withheld_error(self.name, response.status),
                    upstream_status=response.status,
                    headers=response.headers,
                    provider=self.name,
                )
            body = self.hidden(await self.read_body(response))
            message = self.adapter.error_message(body)
            code = self.adapter.error_code(body)
            if self._key:
                # Some APIs quote the key they refused; it must not reach our caller, in
                # the message or in the code (an identifier a key can pass for).
                message = message.replace(self._key, MASK.decode())
                if code is not None and (
                    self._key in code or (len(code) >= 8 and code in self._key)
                ):
                    code = None
            said = f": {message}" if message.strip() else " with an empty body"
            refusal = UpstreamStatusError(
                f"{self.name} answered {response.status}{said}",
                upstream_status=response.status,
                body=body,
                headers=response.headers,
                provider=self.name,
                upstream_code=code,
            )
            if refusal.retry_after is None:
                refusal.retry_after = self.adapter.error_retry_after(body)
            raise refusal
        return response

    async def read_body(self, response: UpstreamResponse) -> bytes:
        """The whole body of an opened response, which is closed afterwards."""
        try:
            return await response.read()
        except UpstreamError as error:
            raise self.attributed(error) from None
        finally:
            await response.aclose()

    async def request(self, http: HttpRequest, call: Call) -> bytes:
        """Send a request and return the whole body of a good answer within the total time
        (this provider's key masked in it: ``hidden``)."""
        return self.hidden(await self.read_body(await self.open(http, call, whole=True)))

    async def raw_stream(
        self, response: UpstreamResponse, call: Call, started: float | None = None
    ) -> AsyncIterator[bytes]:
        """The bytes of an opened response as they arrive; closes it at the end.

        Enforces the first-token, stall and total timeouts, the total counted from
        ``started`` (the loop's time the attempt began, as given to ``open``; now when not
        given). Only our own reads are timed, never the consumer's work between chunks.
        This provider's key, should the upstream quote it, is replaced (``redaction``).
        """
        limits = call.timeouts
        watchdog = ReadWatchdog(limits.first_token, limits.stall, limits.total, started=started)
        chunks = response.chunks()
        redactor = redactor_for(self._key)
        try:
            while True:
                try:
                    watchdog.reading()
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    if redactor is not None and (held := redactor.close()):
                        yield held
                    return
                except (TimeoutError, asyncio.CancelledError):
                    if watchdog.expired is None:
                        raise  # cancelled from outside: the caller went away
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        task.uncancel()
                    raise Timeout(
                        f"{self.name}: upstream too slow: waited longer than allowed for "
                        f"{watchdog.expired}",
                        provider=self.name,
                    ) from None
                except UpstreamError as error:
                    raise self.attributed(error) from None
                watchdog.received()
                if redactor is not None:
                    # Some upstreams quote the key they refused, mid-stream too.
                    chunk = redactor.feed(chunk)
                    if not chunk:
                        continue
                yield chunk
        finally:
            watchdog.close()
            await response.aclose()

    async def complete(self, request: ChatRequest, model: str, call: Call) -> ChatResponse:
        if request.stream:
            # A streamed upstream call folded into one answer (the shared path).
            builder = ResponseBuilder()
            async for event in self.stream(request, model, call):
                builder.add(event)
            return builder.result()
        body = await self.request(self.adapter.chat_request(request, model), call)
        return self.adapter.parse_chat(body)

    async def stream(
        self, request: ChatRequest, model: str, call: Call
    ) -> AsyncIterator[StreamEvent]:
        if not request.stream:
            request = _with_stream(request)
        started = asyncio.get_running_loop().time()  # ``total`` counts from here
        response = await self.open(self.adapter.chat_request(request, model), call, started=started)
        decoder = self.adapter.stream_decoder()
        # Until the first event, the first bytes are kept: an answer that is no stream at
        # all (an HTML error page with a 200) is told by what it said, not as cut short.
        head: bytes | None = b""
        async for chunk in self.raw_stream(response, call, started):
            events = decoder.feed(chunk)
            if head is not None:
                head = None if events else (head + chunk)[:MAX_HEAD]
            for event in events:
                yield event
        try:
            closing = decoder.close()
        except StreamTruncated:
            if (
                head is None
                or not head.strip()
                or head.lstrip().startswith(_SSE_STARTS)
                or self.wire == "ollama"  # lines of JSON, which its decoder reads itself
            ):
                raise
            raise UndecodableResponse(
                f"{self.name}: the answer to a streamed request is not an event stream",
                raw=head.decode(errors="replace"),
                provider=self.name,
            ) from None
        for event in closing:
            yield event

    async def embeddings(
        self, request: EmbeddingRequest, model: str, call: Call
    ) -> EmbeddingResponse:
        body = await self.request(self.adapter.embeddings_request(request, model), call)
        return self.adapter.parse_embeddings(body)

    async def list_models(self) -> list[str]:
        return self.adapter.parse_models(
            await self.request(self.adapter.models_request(), Call(""))
        )

    async def aclose(self) -> None:
        await self._transport.aclose()


#: The bytes of a streamed answer kept to show what it was, when it was no stream.
MAX_HEAD = 2048
#: How an event stream's first line starts: a field or a comment.
_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")


def withheld_error(provider: str, status: int) -> str:
    """An upstream error told by its status alone: the body of an internal service's error
    page must not become a way to read it through the gateway."""
    try:
        reason = f" {HTTPStatus(status).phrase}"
    except ValueError:
        reason = ""
    return (
        f"{provider} answered {status}{reason} (its message is not shown: the provider was "
        "connected at run time)"
    )


def _with_stream(request: ChatRequest) -> ChatRequest:
    return msgspec.structs.replace(request, stream=True)
