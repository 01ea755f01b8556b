"""The seam where cross-cutting features plug into every metered call.

A hook sees each call before it runs (it may refuse it by raising a ``ModelwayError``),
each chunk of its answer as it passes, and the usage record it leaves. The response
cache, metrics and guardrails go here, not into the endpoints. Hooks run on the hot
path: they must be quick and must not block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelway.types import StreamEvent

if TYPE_CHECKING:
    from modelway.calls.metered import MeteredCall
    from modelway.store.records import UsageRecord

#: What a hook sees of an answer: canonical events when translated, bytes when relayed.
Chunk = StreamEvent | bytes


class CallHook:
    """Override what you need; each method does nothing by default."""

    def before(self, call: MeteredCall) -> None:
        """The call was admitted and routed and is about to run; raise to refuse it."""

    def streaming(self, call: MeteredCall) -> None:
        """The call's answer is a stream whose first chunk arrived; it is being handed out."""

    def chunk(self, call: MeteredCall, chunk: Chunk) -> None:
        """One chunk of a streamed answer is on its way to the caller."""

    def after(self, call: MeteredCall, record: UsageRecord) -> None:
        """The call is over, however it ended; ``record`` is its usage record."""
