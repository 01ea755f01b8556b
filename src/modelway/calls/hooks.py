"""The seam where cross-cutting features plug into every metered call.

A hook sees each call before it runs (it may refuse it by raising a ``ModelwayError``),
each chunk of its answer as it passes, and the usage record it leaves. The response
cache, metrics and guardrails go here, not into the endpoints. Hooks run on the hot
path: they must be quick and must not block.

A hook that only counts or writes down what ended (metrics, request lines) says
``later = True``: its ``after`` then runs a little after the call ended (at most
``LATER_SECONDS``), over every call that ended about then, on the same event loop and
in each call's own context (``LaterHooks``). A request then pays for one append, and
the hook's code runs for many calls in a row, warm, rather than once per request among
everything else a request runs — measured, that is most of what such a hook costs a
served request (docs/observability.md, "Cost on the hot path").
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import TYPE_CHECKING

from modelway.types import StreamEvent

if TYPE_CHECKING:
    from modelway.calls.metered import MeteredCall
    from modelway.store.records import UsageRecord

#: What a hook sees of an answer: canonical events when translated, bytes when relayed.
Chunk = StreamEvent | bytes
#: A call that ended, its usage record, and the context it ended in.
Ended = tuple["MeteredCall", "UsageRecord", contextvars.Context]


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

    def after_batch(self, ended: list[Ended]) -> None:
        """A ``later`` hook's view of the calls that ended (each with its record and its
        context): ``after`` for each, in its context, unless the hook does better."""
        after = self.after
        for call, record, context in ended:
            try:
                context.run(after, call, record)
            except Exception:
                log.exception("the %s hook failed on a call's end", type(self).__name__)


class LaterHooks:
    """The ``after`` of the hooks that run later: each ended call is noted (with its
    record and its context) and the hooks go over the batch ``LATER_SECONDS`` after the
    first, on the loop the first ended on; with no running loop, at once. ``run()``
    catches up now (before a metrics scrape, at shutdown)."""

    def __init__(self) -> None:
        self.hooks: tuple[CallHook, ...] = ()
        self._ended: list[Ended] = []
        self._due: asyncio.TimerHandle | None = None
        self._due_loop: asyncio.AbstractEventLoop | None = None

    def add(self, hook: CallHook) -> None:
        self.hooks = (*self.hooks, hook)

    def note(self, call: MeteredCall, record: UsageRecord) -> None:
        """``call`` ended with ``record``: the hooks will see it soon."""
        ended = self._ended
        ended.append((call, record, contextvars.copy_context()))
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
