"""How ``modelway mock`` sends a stream: its chunks paced as a model writes them, with
the faults a request asked for (a slow first token, a stall, a dropped connection), and
a caller that leaves counted as a cancelled stream."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelway.mock.faults import ConnectionDropped, FaultPlan

if TYPE_CHECKING:
    from modelway.mock.server import MockStats


@dataclass(frozen=True)
class Pacing:
    """Seconds before the first chunk and between chunks."""

    latency: float
    interval: float


class PacedStream(Response):
    """Sends pre-encoded chunks with the mock's pacing; a client leaving counts as cancelled."""

    def __init__(
        self,
        chunks: list[bytes],
        plan: FaultPlan,
        pacing: Pacing,
        stats: MockStats,
        media_type: str,
    ) -> None:
        super().__init__(media_type=media_type, headers={"cache-control": "no-cache"})
        # Response sets "content-length: 0" for an empty body; a stream is chunked instead.
        self.raw_headers = [h for h in self.raw_headers if h[0] != b"content-length"]
        self.chunks = chunks
        self.plan = plan
        self.pacing = pacing
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        self.stats.open_streams += 1
        streaming = asyncio.ensure_future(self._send_chunks(send))
        watching = asyncio.ensure_future(_client_gone(receive))
        try:
            await asyncio.wait((streaming, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            streaming.cancel()
            watching.cancel()
            self.stats.open_streams -= 1
        if streaming.done() and not streaming.cancelled():
            error = streaming.exception()
            if error is None:
                return
            if not isinstance(error, OSError):
                raise error
        self.stats.cancelled_streams += 1

    async def _send_chunks(self, send: Send) -> None:
        first_delay = self.pacing.latency + self.plan.first_token_delay
        interval = self.pacing.interval
        for index, chunk in enumerate(self.chunks):
            delay = first_delay if index == 0 else interval
            if index == 1:
                delay += self.plan.stall
            if delay > 0:
                await asyncio.sleep(delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if self.plan.drop:
                raise ConnectionDropped("mock fault: drop")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _client_gone(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
