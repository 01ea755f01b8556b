"""The seam where cross-cutting features plug into every metered call.

A hook sees each call before it runs (it may refuse it by raising a ``ModelwayError``),
each chunk of its answer as it passes, and the usage record it leaves. The response
cache, metrics and guardrails go here, not into the endpoints. Hooks run on the hot
path: they must be quick and must not block.

A hook that only counts or writes down what ended (metrics, request lines) says
``later = True`` and implements ``after_batch``: it then sees each call's end a little
after it (at most ``LATER_SECONDS``), with every call that ended about then, on the same
event loop (``LaterHooks``), as a ``CallEnd`` — the usage record and the few facts of the
call it does not hold, taken as the call ended, so the call itself is not kept. A request
then pays for one small struct and one append, and the hook's code runs for many calls
in a row, warm, rather than once per request among everything else a request runs —
measured, that is most of what such a hook costs a served request (docs/observability.md,
"Cost").
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import msgspec

from modelway.errors import ModelwayError
from modelway.observability.context import current_trace_id
from modelway.store.records import UsageRecord
from modelway.types import StreamEvent

if TYPE_CHECKING:
    from modelway.calls.metered import MeteredCall

#: What a hook sees of an answer: canonical events when translated, bytes when relayed.
Chunk = StreamEvent | bytes


class CallEnd(msgspec.Struct, frozen=True):
    """A call's end as the ``later`` hooks see it: its usage record, and what the record
    does not say about the call, as it was when the call ended."""

    record: UsageRecord
    #: The caller's name (a key's name, ``anonymous``, ``unauthenticated`` ...), never a key.
    key_name: str
    #: ``hit``, ``miss`` or ``bypass`` as the response cache saw the call; None without it.
    cache: str | None
    #: Admitted and routed (the hooks' ``before`` ran); a stream was handed out.
    routed: bool
    streamed: bool
    #: Seconds the answering attempt took upstream (to a stream's first event); None when
    #: no attempt answered.
    upstream_seconds: float | None
    #: What the call ended with when it failed or was refused.
    error: ModelwayError | None
    #: Bytes of the answer the call stored in the response cache.
    stored_bytes: int
    #: The trace id of the call's span (traces on), for the request line.
    trace_id: str | None

    @classmethod
    def of(cls, call: MeteredCall, record: UsageRecord) -> CallEnd:
        """``call``'s end with ``record``, as it is now (in the call's context)."""
        outcome = call.outcome
        return cls(
            record,
            call.caller.name,
            call.cache_status,
            call.routed,
            call.streamed,
            None if outcome is None else outcome.upstream_seconds,
            call.error,
            call.stored_bytes,
            current_trace_id.get(),
        )


#: How late a ``later`` hook may see a call's end.
LATER_SECONDS = 0.02
#: Ended calls waiting past this many run at once (a loop too busy for its timers).
MAX_WAITING_CALLS = 10_000
log = logging.getLogger(__name__)


class CallHook:
    """Override what you need; each method does nothing by default."""

    #: ``after`` may run up to ``LATER_SECONDS`` late, in a batch (see the module).
    later = False

    def before(self, call: MeteredCall) -> None:
        """The call was admitted and routed and is about to run; raise to refuse it."""

    def streaming(self, call: MeteredCall) -> None:
        """The call's answer is a stream whose first chunk arrived; it is being handed out."""

    def chunk(self, call: MeteredCall, chunk: Chunk) -> None:
        """One chunk of a streamed answer is on its way to the caller."""

    def after(self, call: MeteredCall, record: UsageRecord) -> None:
        """The call is over, however it ended; ``record`` is its usage record."""

    def after_batch(self, ended: list[CallEnd]) -> None:
        """A ``later`` hook's view of the calls that ended about now, in the order they did."""


class LaterHooks:
    """The ``after_batch`` of the hooks that run later: each call's end is noted and the
    hooks go over the batch ``LATER_SECONDS`` after the first, on the loop the first ended
    on; with no running loop, at once. ``run()`` catches up now (before a metrics scrape,
    at shutdown)."""

    def __init__(self) -> None:
        self.hooks: tuple[CallHook, ...] = ()
        self._ended: list[CallEnd] = []
        self._due: asyncio.TimerHandle | None = None
        self._due_loop: asyncio.AbstractEventLoop | None = None

    def add(self, hook: CallHook) -> None:
        self.hooks = (*self.hooks, hook)

    def note(self, end: CallEnd) -> None:
        """A call ended: the hooks will see ``end`` soon."""
        ended = self._ended
        ended.append(end)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.run()
            return
        if self._due is not None and self._due_loop is loop:
            if len(ended) >= MAX_WAITING_CALLS:
                self.run()
            return
        if len(ended) > 1:  # left by a loop that stopped before its timer ran: all now
            self.run()
            return
        self._due = loop.call_later(LATER_SECONDS, self.run)
        self._due_loop = loop

    def run(self) -> None:
        """Run the hooks over every call noted so far."""
        due, loop = self._due, self._due_loop
        if due is not None and loop is not None:
            if not loop.is_closed():
                due.cancel()
            self._due = self._due_loop = None
        batch, self._ended = self._ended, []
        if not batch:
            return
        for hook in self.hooks:
            try:
                hook.after_batch(batch)
            except Exception:
                log.exception("the %s hook failed on a batch of ends", type(hook).__name__)
