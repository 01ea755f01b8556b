"""The terminal chat against a running gateway: its chat API keeps the history.

Replies to saved sessions stream from ``POST /chat/api/sessions/{id}/messages`` (the
gateway saves both messages), which is told the last message the terminal shows
(``after``): a chat changed elsewhere meanwhile is refused (409), not garbled.
One-shot answers stream from ``/v1/chat/completions``.
The gateway speaks OpenAI's format, so the OpenAI adapter does the talking.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson

from modelway.chat.backend import (
    Accepted,
    Answered,
    ReplyEvent,
    SessionInfo,
    TokensUsed,
    Turn,
    chat_request,
    reply_events,
)
from modelway.errors import (
    ChatAnswering,
    ChatChanged,
    ConnectError,
    ModelwayError,
    NotFound,
    RateLimited,
    Timeout,
    UndecodableResponse,
    UpstreamError,
    UpstreamStatusError,
)
from modelway.providers.base import HttpRequest
from modelway.providers.openai import OpenAIAdapter
from modelway.providers.transport import Transport
from modelway.providers.upstream import Call, HttpProvider
from modelway.secrets import Secret
from modelway.streams import SSEDecoder
from modelway.types import TextDelta

SESSIONS = "/chat/api/sessions"


class _GatewayAdapter(OpenAIAdapter):
    """OpenAI's format under the gateway's ``/v1``, so one client reaches ``/chat/api`` too."""

    def path(self, endpoint: str, model: str) -> str:
        return f"/v1/{endpoint}"


class RemoteBackend:
    """A running gateway at ``url``, called with ``key`` (Bearer) when one is given."""

    def __init__(self, url: str, key: str | None, *, transport: Transport | None = None) -> None:
        self.location = url.rstrip("/")
        self._gateway = HttpProvider(
            "gateway",
            _GatewayAdapter(),
            self.location,
            Secret(key) if key else None,
            transport=transport,
        )

    async def check_model(self, model: str) -> None:
        return None  # the gateway says so on the first message; asking first costs a call

    async def answer_once(
        self, content: str, model: str, system: str | None
    ) -> AsyncGenerator[ReplyEvent, None]:
        request = chat_request(model, system, [], content)
        events = self._guarded(self._gateway.stream(request, model, _call()))
        yield Answered(None, model)
        async for event in reply_events(request, events, []):
            yield event

    async def sessions(self) -> list[SessionInfo]:
        body = await self._json("GET", SESSIONS)
        return [_session_info(item) for item in body.get("sessions") or ()]

    async def create_session(self, title: str, model: str, system: str | None) -> SessionInfo:
        fields = {"title": title, "model": model, "system": system}
        return _session_info(await self._json("POST", SESSIONS, fields))

    async def open_session(self, session_id: str) -> tuple[SessionInfo, list[Turn]]:
        body = await self._json("GET", f"{SESSIONS}/{quote(session_id, safe='')}")
        turns = [
            Turn(
                str(item.get("role") or "assistant"),
                str(item.get("content") or ""),
                item.get("model"),
                item.get("error"),
                item.get("id"),
            )
            for item in body.get("messages") or ()
        ]
        return _session_info(body.get("session") or {}), turns

    async def set_model(self, session_id: str, model: str) -> None:
        await self._json("PATCH", f"{SESSIONS}/{quote(session_id, safe='')}", {"model": model})

    async def send(
        self, session: SessionInfo, content: str, model: str, *, after: str | None
    ) -> AsyncGenerator[ReplyEvent, None]:
        path = f"{SESSIONS}/{quote(session.id, safe='')}/messages"
        body = orjson.dumps({"content": content, "model": model, "after": after})
        request = HttpRequest("POST", path, body, {"content-type": "application/json"})
        try:
            response = await self._open(request)
        except UpstreamStatusError as error:
            if error.upstream_status == 404 and "no chat session" in error.message:
                # The chat API is there (the session was read), the chat is not: deleted
                # in the web chat or another terminal meanwhile.
                raise NotFound(f"no chat session {session.id}") from None
            if error.upstream_status != 409:
                raise
            if error.code == "chat_answering":
                raise ChatAnswering() from None
            raise ChatChanged() from None
        decoder = SSEDecoder()
        async for chunk in self._guarded(self._gateway.raw_stream(response, _call())):
            for message in decoder.feed(chunk):
                event = _chat_event(message.data)
                if event is not None:
                    yield event

    async def aclose(self) -> None:
        await self._gateway.aclose()

    async def _json(self, method: str, path: str, fields: dict[str, Any] | None = None) -> Any:
        body = orjson.dumps(fields) if fields is not None else None
        headers = {"content-type": "application/json"} if body is not None else {}
        response = await self._open(HttpRequest(method, path, body, headers))
        try:
            data = await response.read()
        except UpstreamError as error:
            raise self._gateway.attributed(error) from None
        finally:
            await response.aclose()
        if not data:
            return {}
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UndecodableResponse(
                f"the gateway's answer to {method} {path} is not JSON",
                raw=data.decode(errors="replace"),
            ) from None

    async def _open(self, request: HttpRequest) -> Any:
        try:
            return await self._gateway.open(request, _call())
        except ConnectError:
            raise ConnectError(f"cannot reach the gateway at {self.location}") from None
        except Timeout:
            raise Timeout(f"the gateway at {self.location} did not answer in time") from None
        except UpstreamStatusError as error:
            if error.upstream_status == 404 and request.path.startswith(SESSIONS):
                error.message = _missing_chat_api(error.message, self.location)
                error.args = (error.message,)
            raise

    async def _guarded(self, chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """``chunks``, with an unreachable gateway named as such."""
        try:
            async for chunk in chunks:
                yield chunk
        except ConnectError:
            raise ConnectError(f"cannot reach the gateway at {self.location}") from None


def _call() -> Call:
    return Call(uuid.uuid4().hex)


def _missing_chat_api(message: str, location: str) -> str:
    # A URL with an API path after the root, or an older gateway without the chat API:
    # say which rather than a bare 404.
    if "no route" not in message:
        return message
    if location.endswith(("/v1", "/api")):
        suffix = location.rsplit("/", 1)[1]
        return f"give --url the gateway's root, without /{suffix}: {location}"
    return "this gateway has no chat API (/chat/api): it cannot keep chat history"


def _session_info(item: dict[str, Any]) -> SessionInfo:
    return SessionInfo(
        str(item.get("id") or ""),
        str(item.get("title") or "New chat"),
        item.get("model"),
        item.get("system"),
        float(item.get("updated_at") or 0.0),
    )


def _chat_event(data: str) -> ReplyEvent | None:
    """One chat API stream event as a reply event; its error events are raised."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UndecodableResponse("the gateway sent an undecodable event", raw=data) from None
    kind = event.get("type") if isinstance(event, dict) else None
    if kind == "accepted":
        return Accepted(str(event.get("question_id") or ""), str(event.get("reply_id") or ""))
    if kind == "delta":
        return TextDelta(str(event.get("text") or ""))
    if kind == "provider":
        return Answered(event.get("provider"), str(event.get("model") or ""))
    if kind == "usage":
        tokens = event.get("tokens") or {}
        estimated = not event.get("accurate", False)
        return TokensUsed(
            int(tokens.get("prompt") or 0), int(tokens.get("completion") or 0), estimated
        )
    if kind == "rate_limited":
        raise RateLimited(
            str(event.get("message") or "rate limited"), retry_after=event.get("retry_after")
        )
    if kind == "error":
        raise ModelwayError(str(event.get("message") or "the reply failed"))
    return None
