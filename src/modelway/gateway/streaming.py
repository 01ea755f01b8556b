"""A streamed response that stops, and closes its upstream, the moment the client leaves.

Starlette's ``StreamingResponse`` notices a departed client only when its next write
fails (ASGI 2.4 servers), so a stalled upstream would keep its connection open for
nobody. Here a watcher waits for ``http.disconnect`` and cancels the pump at once; the
body iterator is always closed, which closes the upstream response. That is the ASGI
way of sending one; ``modelway serve`` sends a chat call's stream straight to granian
instead (``gateway.rsgi.send_stream``: no messages, no watcher task).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class EventStream(Response):
    """Sends ``body`` chunk by chunk; a client disconnect cancels it immediately."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            media_type=media_type, headers={**(headers or {}), "cache-control": "no-cache"}
        )
        # Response sets "content-length: 0" for an empty body; a stream is chunked instead.
        self.raw_headers = [h for h in self.raw_headers if h[0] != b"content-length"]
        self.body_iterator = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pump = asyncio.current_task()
        assert pump is not None
        gone = False

        async def watch() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            pump.cancel()

        watcher = asyncio.create_task(watch())
        body = self.body_iterator
        try:
            # The first chunk is taken before the headers go out, so the body has started
            # and closing it always runs its cleanup (an unstarted generator skips it).
            first = await anext(body, b"")
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not gone:
                raise
        except OSError:
            pass  # a write failed: the client left between two chunks
        finally:
            watcher.cancel()
            try:
                await body.aclose()  # type: ignore[attr-defined]
            except asyncio.CancelledError:
                if not gone:
                    raise
            if gone and pump.cancelling():
                pump.uncancel()
