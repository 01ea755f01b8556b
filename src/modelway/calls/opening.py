"""``Calls``: where metered calls are opened, one per process, shared by every face.

It holds what every call shares — the engine, the accounts (limits, budgets, the usage
recorder), the response cache — and the hooks, sorted once by what each looks at
(before a call, a stream handed out, each chunk, the end now or in ``later`` batches),
so a call asks only the hooks that care; a call tells it as it begins, hands out a
stream and ends (``begun``, ``streaming``, ``ended``), which is where the calls in
flight are counted and those hooks are asked. ``open`` gives a ``MeteredCall``
(``metered.py``); ``aclose`` finishes what is still settling and closes the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from modelway.cache.policy import NO_DIRECTIVES, CacheControl
from modelway.calls.accounts import Accounts
from modelway.calls.caller import Caller
from modelway.calls.finishing import Finisher
from modelway.calls.hooks import CallEnd, CallHook, LaterHooks
from modelway.calls.metered import MeteredCall
from modelway.config import Timeouts
from modelway.engine import Engine
from modelway.errors import ModelwayError

if TYPE_CHECKING:
    from modelway.cache.responses import ResponseCache
    from modelway.store.records import UsageRecord


class Calls:
    """Opens metered calls; one per process, shared by every face."""

    def __init__(
        self,
        engine: Engine,
        accounts: Accounts,
        hooks: Sequence[CallHook] = (),
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        self.engine = engine
        self.accounts = accounts
        #: The response cache and idempotency keys (None: neither, as for the library).
        self.cache = cache
        #: dialect -> calls admitted and routed and not over, and streams handed out and
        #: not over (the metrics' in-flight gauges read them).
        self.in_flight: dict[str, int] = {}
        self.streams_in_flight: dict[str, int] = {}
        self.hooks: tuple[CallHook, ...] = ()
        #: The hooks that look at a call before it runs, and at a stream handed out.
        self.before_hooks: tuple[CallHook, ...] = ()
        self.streaming_hooks: tuple[CallHook, ...] = ()
        #: The hooks that look at chunks: a stream's every chunk calls only these.
        self.chunk_hooks: tuple[CallHook, ...] = ()
        #: The hooks whose ``after`` runs as the call ends; the others' (``later``) in
        #: batches, by ``later``.
        self.after_hooks: tuple[CallHook, ...] = ()
        self.later = LaterHooks()
        for hook in hooks:
            self.add_hook(hook)
        #: Settlements (and other steps) that finish even when their caller is cancelled.
        self.finisher = Finisher()
        #: Set when the worker cuts the calls still open at the end of its shutdown grace:
        #: a call cancelled then ends as the gateway's 503, not as a caller who left.
        self.stopping = False
        #: Calls that end after their answer went out (a background response's, read until
        #: it ends): stopped at shutdown, when each ends with what it knows.
        self._watched: set[asyncio.Task[None]] = set()

    def add_hook(self, hook: CallHook) -> None:
        """Plug ``hook`` into every call opened from now on."""
        self.hooks = (*self.hooks, hook)
        if type(hook).before is not CallHook.before:
            self.before_hooks = (*self.before_hooks, hook)
        if type(hook).streaming is not CallHook.streaming:
            self.streaming_hooks = (*self.streaming_hooks, hook)
        if type(hook).chunk is not CallHook.chunk:
            self.chunk_hooks = (*self.chunk_hooks, hook)
        if hook.later:
            if type(hook).after_batch is not CallHook.after_batch:
                self.later.add(hook)
        elif type(hook).after is not CallHook.after:
            self.after_hooks = (*self.after_hooks, hook)

    def begun(self, call: MeteredCall) -> None:
        """``call`` was admitted and routed: in flight until it ends; the ``before`` hooks
        (which may refuse it) see it."""
        in_flight = self.in_flight
        in_flight[call.dialect] = in_flight.get(call.dialect, 0) + 1
        for hook in self.before_hooks:
            hook.before(call)

    def streaming(self, call: MeteredCall) -> None:
        """``call`` handed out a stream: in flight until the call ends."""
        streams = self.streams_in_flight
        streams[call.dialect] = streams.get(call.dialect, 0) + 1
        for hook in self.streaming_hooks:
            hook.streaming(call)

    def ended(self, call: MeteredCall, record: UsageRecord) -> None:
        """``call`` is over with ``record``: out of flight; the ``after`` hooks see it now,
        the ``later`` ones soon, as its ``CallEnd``."""
        if call.routed:
            self.in_flight[call.dialect] -= 1
            if call.streamed:
                self.streams_in_flight[call.dialect] -= 1
        for hook in self.after_hooks:
            hook.after(call, record)
        if self.later.hooks:
            self.later.note(CallEnd.of(call, record))

    def open(
        self,
        caller: Caller,
        model: str,
        *,
        dialect: str,
        request_id: str,
        request_bytes: int = 0,
        max_tokens: int | None = None,
        fallbacks: Sequence[str] = (),
        max_retries: int | None = None,
        timeouts: Timeouts | None = None,
        cache: CacheControl = NO_DIRECTIVES,
        idempotency_key: str | None = None,
    ) -> MeteredCall:
        """A call of ``model`` for ``caller``; ``async with`` it to admit and route it.

        ``request_bytes`` and ``max_tokens`` size the token reservation of a key with a
        TPM limit; ``fallbacks``, ``max_retries`` and ``timeouts`` adjust the route;
        ``cache`` is the request's ``Cache-Control`` and ``idempotency_key`` its
        ``Idempotency-Key`` (docs/cache.md).
        """
        return MeteredCall(
            self,
            caller,
            model,
            dialect,
            request_id,
            request_bytes,
            max_tokens,
            (fallbacks, max_retries, timeouts),
            (cache, idempotency_key),
        )

    async def refused(
        self, caller: Caller, *, dialect: str, request_id: str, error: ModelwayError
    ) -> None:
        """A request refused before its call could begin — its key, or its body (too large,
        too slow, not JSON, no model) — recorded as a call that ended so: one usage record
        with its status and error type, and the hooks' ``after`` (its request line)."""
        await self.open(caller, "", dialect=dialect, request_id=request_id).refused(error)

    def watch(self, ending: Coroutine[Any, Any, None]) -> None:
        """Run a call's ``ending`` beside the requests (``MeteredCall._background``)."""
        task = asyncio.ensure_future(ending)
        self._watched.add(task)
        task.add_done_callback(self._watched.discard)

    async def drain(self) -> None:
        """Wait for settlements still running (before the usage writer and limits close),
        and run the ``later`` hooks over the calls that ended. Calls still watched are
        stopped: each ends now, with what it knows."""
        for task in self._watched:
            task.cancel()
        while self._watched:
            await asyncio.wait(set(self._watched))
        await self.finisher.drain()
        self.later.run()

    async def aclose(self) -> None:
        """At shutdown, once no call is running: finish, close upstreams, flush usage."""
        await self.drain()
        try:
            await self.engine.aclose()
        finally:
            if self.cache is not None:
                await self.cache.aclose()
            await self.accounts.aclose()
