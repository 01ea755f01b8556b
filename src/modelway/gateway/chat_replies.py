"""The web chat's replies streaming in this worker, one per session: two tabs on one chat
take turns rather than interleave.

A message is saved when its call is admitted and its reply when the reply ends, so a
second message sent meanwhile (another tab, another window) would be saved between a
question and its answer. A client that names the last message it shows (``after``) is
refused while another client's reply to that chat streams (``ChatAnswering``), and waits
for a reply of its own that it stopped, which the gateway is still saving.

Per worker: with several workers, a send that reaches another worker than the reply's
is only checked against the saved history (``ChatChanged``).
"""

from __future__ import annotations

import asyncio
import contextlib

from modelway.errors import ChatAnswering

#: How long a send waits for a reply its own client stopped to be saved (seconds): the
#: gateway saves it as soon as it sees the client hang up, in a few milliseconds.
STOPPED_REPLY_WAIT = 10.0


class ReplyInFlight:
    """A reply being streamed: its session, the id it will be saved with, and its end."""

    def __init__(self, session_id: str, reply_id: str) -> None:
        self.session_id = session_id
        self.reply_id = reply_id
        self.ended = asyncio.Event()


class RepliesInFlight:
    """The replies this worker is streaming, at most one per chat session."""

    def __init__(self) -> None:
        self._by_session: dict[str, ReplyInFlight] = {}

    def claim(self, session_id: str, reply_id: str) -> ReplyInFlight | None:
        """Note a reply as streaming in its session; None if another one already is."""
        if session_id in self._by_session:
            return None
        reply = self._by_session[session_id] = ReplyInFlight(session_id, reply_id)
        return reply

    def release(self, reply: ReplyInFlight) -> None:
        """The reply ended and is saved (or never started); releasing again does nothing."""
        if self._by_session.get(reply.session_id) is reply:
            del self._by_session[reply.session_id]
        reply.ended.set()

    async def wait_for_turn(self, session_id: str, after: str | None) -> None:
        """Return once no reply streams in the session, or raise ``ChatAnswering``.

        ``after`` is the last message the client shows: a reply it names is the client's
        own, which it stopped (it sends nothing while its reply streams), and which is
        waited for; any other is a reply to another client's message.
        """
        while (streaming := self._by_session.get(session_id)) is not None:
            if streaming.reply_id != after:
                raise ChatAnswering()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(streaming.ended.wait(), STOPPED_REPLY_WAIT)
            if not streaming.ended.is_set():
                raise ChatAnswering()
