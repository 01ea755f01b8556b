"""The web chat's reply as server-sent events, one ``data: <json>`` line each; the caller
hanging up cancels the reply, which saves itself before it lets go."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

#: A chat event, as sent to the page (``type`` plus its fields).
Event = dict[str, Any]
Emit = Callable[[Event], Awaitable[None]]


class ChatEventStream(Response):
    """Server-sent chat events; the caller leaving cancels the reply (which then saves itself).

    Starlette's streaming response would keep reading the upstream after a browser's
    Stop on some servers; watching for ``http.disconnect`` here makes Stop stop the call.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        produce: Callable[[Emit], Awaitable[None]],
        *,
        unstarted: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
        # Response sets "content-length: 0" for an empty body; a stream is chunked instead.
        self.raw_headers = [h for h in self.raw_headers if h[0] != b"content-length"]
        self.produce = produce
        #: Run if ``produce`` never starts (the caller gone before the stream opened).
        self.unstarted = unstarted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def emit(event: Event) -> None:
            body = b"data: " + orjson.dumps(event) + b"\n\n"
            await send({"type": "http.response.body", "body": body, "more_body": True})

        async def run() -> None:
            nonlocal started
            started = True
            await self.produce(emit)

        try:
            await self._stream(receive, send, run)
        finally:
            if not started:
                self.unstarted()

    async def _stream(
        self, receive: Receive, send: Send, run: Callable[[], Awaitable[None]]
    ) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        producing = asyncio.ensure_future(run())
        watching = asyncio.ensure_future(_caller_gone(receive))
        try:
            await asyncio.wait((producing, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not producing.done():
                producing.cancel()
                # The reply saves what arrived before it lets go.
                with contextlib.suppress(asyncio.CancelledError):
                    await producing
        if producing.cancelled():
            return
        failure = producing.exception()
        if failure is not None and not isinstance(failure, OSError | ClientDisconnect):
            raise failure
        with contextlib.suppress(OSError, ClientDisconnect):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _caller_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
