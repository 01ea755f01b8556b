"""One call to a model, metered from admission to its usage record: the way every face calls.

The gateway's endpoints (chat in every dialect, embeddings, the web chat), the terminal
chat and ``modelway.Client`` all do::

    async with calls.open(caller, model, dialect="openai", request_id=rid) as call:
        answer = await call.complete(chat)     # or call.stream(chat), call.embed(request),
                                               # call.relay(body, headers)

Entering admits the call (the key's models, budgets, RPM/TPM), routes it once and asks
the hooks; running it calls the engine (retries, failover); its end — an answer, a
stream that ends or is closed, an error, a refusal — records one usage record, settles
the token reservation and charges the budgets, once. A stream owns that end: it comes
when the stream does. The call's state is its own; callers read it through properties.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from modelway.cache.entries import Entry, replay
from modelway.cache.policy import NO_DIRECTIVES, CacheControl
from modelway.calls.accounts import token_estimate
from modelway.calls.caller import Caller
from modelway.calls.embeddings import counted_usage
from modelway.calls.hooks import Chunk
from modelway.calls.relay import (
    Headers,
    Relay,
    Relayed,
    WholeAnswer,
    background_ended,
    relayable,
)
from modelway.calls.tallies import ByteTally, EventTally, Tally
from modelway.config import Timeouts
from modelway.engine import Outcome
from modelway.errors import BadRequest, ModelwayError, ServerStopping
from modelway.limits import UNLIMITED, Ticket
from modelway.providers.upstream import Call
from modelway.routing.targets import Route
from modelway.store.records import UsageRecord
from modelway.tokens import answer_text_size, estimated_usage
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
    Usage,
)

if TYPE_CHECKING:
    from modelway.cache.responses import CachedCall, CacheStatus
    from modelway.calls.opening import Calls

#: The status a record gets when the caller left before the answer ended (nginx's).
CLIENT_CLOSED = 499
#: The longest model name a call may ask for (real ones, Bedrock ARNs included, are shorter).
MAX_MODEL_NAME = 256
C = TypeVar("C", bound=Chunk)

log = logging.getLogger("modelway.calls")


class MeteredCall:
    """One call from admission to its usage record (see the module docstring)."""

    __slots__ = (
        "_cache_options",
        "_cached",
        "_caller",
        "_calls",
        "_cost_saved",
        "_dialect",
        "_ends_later",
        "_error",
        "_first_byte_at",
        "_handed_out",
        "_max_tokens",
        "_metered_stream",
        "_model",
        "_outcome",
        "_prompt",
        "_request_bytes",
        "_request_id",
        "_route",
        "_route_options",
        "_settled",
        "_started",
        "_stream",
        "_ticket",
        "_time",
        "_upstream",
        "_usage",
        "finish_reason",
    )

    def __init__(
        self,
        calls: Calls,
        caller: Caller,
        model: str,
        dialect: str,
        request_id: str,
        request_bytes: int,
        max_tokens: int | None,
        route_options: tuple[Sequence[str], int | None, Timeouts | None],
        cache_options: tuple[CacheControl, str | None] = (NO_DIRECTIVES, None),
    ) -> None:
        self._calls = calls
        self._caller = caller
        self._model = model
        self._dialect = dialect
        self._request_id = request_id
        self._request_bytes = request_bytes
        #: What the prompt tokens are estimated from when no usage comes: the canonical
        #: request or the relayed body, once the call is given one.
        self._prompt: ChatRequest | dict[str, Any] | None = None
        self._max_tokens = max_tokens
        self._route_options = route_options
        self._cache_options = cache_options
        #: The response cache's part in this call, once a chat request began it.
        self._cached: CachedCall | None = None
        self._cost_saved = 0.0
        self._route: Route | None = None
        self._ticket: Ticket = UNLIMITED
        self._outcome: Outcome | None = None
        self._stream = False
        #: A stream handed out and not over yet: the metered one, and what it reads.
        self._metered_stream: AsyncGenerator[Any, None] | None = None
        self._upstream: AsyncIterator[Any] | None = None
        self._settled = False
        #: A background response's call, which ends when the response does.
        self._ends_later = False
        self._time = time.time()
        self._started = time.monotonic()
        self._first_byte_at: float | None = None
        self._error: ModelwayError | None = None
        self._usage: Usage | None = None
        self._handed_out = False
        #: How the answer ended, as its provider said (``stop``, ``end_turn``, ...), once known.
        self.finish_reason: str | None = None

    # --- what callers and hooks may read ------------------------------------------------

    @property
    def request_id(self) -> str:
        return self._request_id

    @property
    def caller(self) -> Caller:
        return self._caller

    @property
    def dialect(self) -> str:
        """The caller's wire format (``openai``, ``anthropic``, ``ollama``, ``chat``, ...)."""
        return self._dialect

    @property
    def model(self) -> str:
        """The model name the caller asked for."""
        return self._model

    @property
    def route(self) -> Route:
        """Where the call may go, resolved once on entering."""
        assert self._route is not None, "enter the call (async with) first"
        return self._route

    @property
    def routed(self) -> bool:
        """Whether the call was admitted and routed (and the hooks' ``before`` ran)."""
        return self._route is not None

    @property
    def streamed(self) -> bool:
        """Whether a stream was handed out (the hooks' ``streaming`` ran)."""
        return self._handed_out

    @property
    def error(self) -> ModelwayError | None:
        """What the call ended with, when it failed or was refused (for ``after`` hooks)."""
        return self._error

    @property
    def usage(self) -> Usage | None:
        """The tokens the call was recorded with once it ended (estimated when no usage
        was reported: a stream stopped or cut short); None until then."""
        return self._usage

    @property
    def outcome(self) -> Outcome | None:
        """Which target answered, after how many attempts (None until one did)."""
        return self._outcome

    @property
    def rate_limit_headers(self) -> list[tuple[bytes, bytes]]:
        """``x-ratelimit-*`` headers for the answer (none without a key's limits)."""
        return self._ticket.headers

    @property
    def cache_status(self) -> CacheStatus | None:
        """``hit``, ``miss`` or ``bypass`` for a call of an alias the cache is on for (or with
        an idempotency key); None otherwise."""
        if self._cached is not None:
            return self._cached.status
        cache = self._calls.cache
        if cache is None or self._route is None or cache.policy(self._route.alias) is None:
            return None
        return "bypass"  # on for the alias, but not for this call (``no-cache, no-store``)

    @property
    def cache_entry(self) -> Entry | None:
        """The stored answer a cache hit replays (its provider, model and age)."""
        return None if self._cached is None else self._cached.entry

    @property
    def answered_by(self) -> tuple[str, str] | None:
        """The provider and model that gave the answer (a cache hit's first), once known."""
        entry = self.cache_entry
        if entry is not None:
            return entry.provider, entry.model
        outcome = self._outcome
        if outcome is None:
            return None
        return outcome.target.backend.name, outcome.target.model

    @property
    def cost_saved(self) -> float:
        """USD a cache hit saved: what its answer cost when it was asked upstream."""
        return self._cost_saved

    @property
    def stored_bytes(self) -> int:
        """Bytes of the answer this call stored in the response cache (0 if none)."""
        return 0 if self._cached is None else self._cached.stored_bytes

    def relayable(self) -> bool:
        """Whether every target speaks the caller's own format (``relay`` then applies)."""
        return relayable(self.route, self._dialect)

    def caches(self) -> bool:
        """Whether the response cache or an idempotency key applies (cheap; no lookup yet).

        Such a call goes the translated way (``complete``/``stream``), never ``relay``:
        the cache keeps canonical answers.
        """
        cache = self._calls.cache
        if cache is None:
            return False
        control, idempotency_key = self._cache_options
        return cache.applies(self.route.alias, control, idempotency_key is not None)

    # --- entering and leaving ----------------------------------------------------------

    async def __aenter__(self) -> MeteredCall:
        calls = self._calls
        try:
            if len(self._model) > MAX_MODEL_NAME:
                # Refused before it is counted, routed or kept whole in the usage record.
                raise BadRequest(f"model: at most {MAX_MODEL_NAME} characters")
            self._ticket = await calls.accounts.admit(
                self._caller, self._model, self._request_bytes, self._max_tokens
            )
            fallbacks, max_retries, timeouts = self._route_options
            route = calls.engine.route(self._model, fallbacks, max_retries)
            # The estimate goes with the route: any deployment on it, a fallback's too, may
            # have a TPM cap of its own to reserve it against.
            if calls.accounts.usd_budgeted(self._caller):
                calls.accounts.refuse_unpriced((t.backend.name, t.model) for t in route.targets)
            self._route = route._replace(
                timeouts=timeouts or route.timeouts,
                tokens=token_estimate(self._request_bytes, self._max_tokens),
            )
            calls.begun(self)
        except ModelwayError as error:
            await self._finish(error.status, None, error)
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            if self._metered_stream is None and not self._settled and not self._ends_later:
                await self._finish(200, None, None)  # nothing ran: the call is over anyway
            return  # a stream handed out finishes the call when it ends
        if self._metered_stream is not None:
            # Read inside the block: closing it records what it counted. Never started: its
            # upstream is closed here and the failure recorded.
            await self._metered_stream.aclose()
            if self._upstream is not None:
                await self._upstream.aclose()  # type: ignore[attr-defined]
        if self._cached is not None:
            await self._cached.abandon()  # a failed call (or a stream never read) frees its key
        if isinstance(error, ModelwayError):
            await self._finish(error.status, None, error)
        elif self._calls.stopping and isinstance(error, asyncio.CancelledError):
            stopped = _stopped()
            await self._finish(stopped.status, None, stopped)
        else:
            await self._finish(CLIENT_CLOSED, None, None)

    # --- running it ----------------------------------------------------------------------

    async def refused(self, error: ModelwayError) -> None:
        """End a call that was never entered, refused before it could begin (``Calls.refused``)."""
        await self._finish(error.status, None, error)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The whole answer, translated from and to the canonical form (or from the cache)."""
        self._prompt = request
        cached = await self._begin_cache(request)
        if cached is not None and cached.entry is not None:
            response = self._hit(cached.entry)
            await self._finish(200, Usage(), None)
            return response
        # A failure here frees an idempotency key this call took (``__aexit__``).
        response, self._outcome = await self._calls.engine.complete(
            request, request_id=self._request_id, dialect=self._dialect, route=self.route
        )
        self._first_byte()
        self.finish_reason = response.stop_reason
        if cached is not None:
            target = self._outcome.target
            await cached.keep(response, target.backend.name, target.model)
        size = answer_text_size(response) if response.usage is None else 0
        await self._finish(200, response.usage, None, size)
        return response

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """The answer's canonical events, once the first has arrived; metered as they pass.

        A cache hit replays the stored answer's events; a miss keeps the answer only when
        the stream ended cleanly (``MessageEnd``, no error, not abandoned).
        """
        self._stream = True
        self._prompt = request
        cached = await self._begin_cache(request)
        if cached is not None and cached.entry is not None:
            self._hit(cached.entry)
            return self._metered(replay(cached.entry.response), EventTally())
        opened = await self._calls.engine.open_stream(
            request, request_id=self._request_id, dialect=self._dialect, route=self.route
        )
        self._outcome = opened.outcome
        events = opened.events
        if cached is not None:
            target = opened.outcome.target
            events = cached.kept(events, target.backend.name, target.model)
        return self._metered(events, EventTally())

    async def _begin_cache(self, request: ChatRequest) -> CachedCall | None:
        """The response cache's part in this call, when it applies (may raise 422/409).

        A miss while the identical request is in flight in this process waits for its
        answer, at most the route's total timeout (then it runs beside it).
        """
        if not self.caches():
            return None
        cache = self._calls.cache
        assert cache is not None
        control, idempotency_key = self._cache_options
        route = self.route
        alias = route.alias or self._model
        self._cached = await cache.begin(
            self._caller, alias, request, control, idempotency_key, route.timeouts.total
        )
        return self._cached

    def _hit(self, entry: Entry) -> ChatResponse:
        """Answer from ``entry``: nothing spent, its original cost saved."""
        self._first_byte()
        response = entry.response
        self.finish_reason = response.stop_reason
        usage = response.usage or Usage()
        self._cost_saved = self._calls.accounts.cost(entry.provider, entry.model, usage) or 0.0
        return response

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """Vectors for the request's texts."""
        response, self._outcome = await self._calls.engine.embeddings(
            request, request_id=self._request_id, route=self.route
        )
        self._first_byte()
        response.usage = counted_usage(request, response.usage)
        await self._finish(200, response.usage, None)
        return response

    async def relay(self, body: dict[str, Any], headers: Headers) -> Relayed:
        """The caller's own format relayed as the upstream answers it (see ``relayable``)."""
        route = self.route
        relay = Relay(self._calls.engine, route, body, self._dialect, headers)
        self._prompt = body
        call = Call(self._request_id, route.timeouts)
        self._stream = relay.stream
        if not relay.stream:
            whole = await relay.whole(call)
            self._outcome = whole.outcome
            self._first_byte()
            self.finish_reason = whole.finish_reason
            if whole.running:
                # Answered "queued": what it costs is known when it ends, and so the call ends
                # then (its record, its tokens and its budgets), however long it runs.
                self._ends_later = True
                self._calls.watch(self._background(whole, call))
            else:
                await self._finish(200, whole.usage, None, whole.text_size)
            return Relayed(whole.body, None, "application/json", whole.outcome, whole.response_id)
        opened = await relay.open(call)
        self._outcome = opened.outcome
        chunks = self._metered(opened.chunks, ByteTally(opened.scanner))
        return Relayed(None, chunks, opened.media_type, opened.outcome, scanner=opened.scanner)

    async def _background(self, whole: WholeAnswer, call: Call) -> None:
        """Read a background response until it ends, then end the call with its usage (with
        an estimate if it is gone, still running at the limit, or the gateway stops)."""
        ended: WholeAnswer | None = None
        try:
            ended = await background_ended(whole.outcome.target, whole, call)
        finally:
            if ended is None:
                log.warning(
                    "background response %s: its end was not read; its usage is estimated",
                    whole.response_id,
                )
            answer = ended or whole
            self.finish_reason = answer.finish_reason
            await self._calls.finisher.run(self._finish(200, answer.usage, None, answer.text_size))

    # --- metering ------------------------------------------------------------------------

    def _metered(self, source: AsyncIterator[C], tally: Tally) -> AsyncGenerator[C, None]:
        """``source`` passed on; its end (whole, failed or abandoned) finishes the call."""
        self._upstream = source
        metered = self._meter(source, tally)
        self._metered_stream = metered
        self._handed_out = True
        self._calls.streaming(self)
        return metered

    async def _meter(self, source: AsyncIterator[C], tally: Tally) -> AsyncGenerator[C, None]:
        self._upstream = None  # started: from here on, closing it closes ``source``
        status = CLIENT_CLOSED
        failure: ModelwayError | None = None
        hooks = self._calls.chunk_hooks
        try:
            async for chunk in source:
                self._first_byte()
                tally.add(chunk)
                for hook in hooks:
                    hook.chunk(self, chunk)
                yield chunk
            status = 200
        except ModelwayError as error:
            failure, status = error, error.status
            raise
        except asyncio.CancelledError:
            if not self._calls.stopping:
                raise  # its caller left
            # Cut by the worker's shutdown: an error the caller's stream ends with (its
            # format's error event), as any failure mid-stream, and the call's 503.
            failure = _stopped()
            status = failure.status
            raise failure from None
        finally:
            self._metered_stream = None
            self.finish_reason = tally.finish_reason
            try:
                await source.aclose()  # type: ignore[attr-defined]
            finally:
                await self._finish(status, tally.usage, failure, tally.size)

    def _first_byte(self) -> None:
        if self._first_byte_at is None:
            self._first_byte_at = time.monotonic()

    async def _finish(
        self, status: int, usage: Usage | None, error: ModelwayError | None, answer_size: int = 0
    ) -> None:
        """Record the call, then settle its limits and budgets; only the first time. Without
        ``usage``: estimated from the texts (``answer_size`` UTF-8 bytes, ``estimated_usage``)."""
        if self._settled:
            return
        self._settled = True
        self._error = error
        calls = self._calls
        outcome = self._outcome
        if usage is None and outcome is None:
            usage = Usage()  # nothing reached a provider (refused, unknown model, ...)
        elif usage is None:
            usage = estimated_usage(self._prompt, self._request_bytes, answer_size)
        accounts = calls.accounts
        cost: float | None = 0.0  # None: the model has no price
        cached = self._cached
        if cached is not None:
            cached.land()  # nothing it held in flight outlives the call, however it ended
        if cached is not None and cached.entry is not None:
            usage = Usage()  # a cache hit spent nothing: no tokens, no cost
        elif outcome is not None:
            cost = accounts.cost(outcome.target.backend.name, outcome.target.model, usage)
        self._usage = usage
        record = self._record(status, usage, error, cost)
        accounts.recorder.record(record)
        calls.ended(self, record)
        deployment_ticket = UNLIMITED if outcome is None else outcome.deployment_ticket
        if (
            self._caller.key is None
            and self._ticket is UNLIMITED
            and deployment_ticket is UNLIMITED
        ):
            return  # nothing reserved, no budget: nothing to settle
        tickets = (deployment_ticket, self._ticket)
        settle = accounts.settle(self._caller, tickets, usage, cost)
        if accounts.limits.backend == "memory":
            await settle  # never suspends, so no cancellation can cut it short
        else:
            # A caller leaving may cancel this task mid-way through Redis's round trips:
            # the budgets are still charged, in a task of their own.
            await self._calls.finisher.run(settle)

    def _record(
        self, status: int, usage: Usage, error: ModelwayError | None, cost: float | None
    ) -> UsageRecord:
        outcome = self._outcome
        caller = self._caller
        first_byte = self._first_byte_at
        hit = self.cache_entry
        asked: tuple[str | None, str | None, int] = (None, None, 0)  # whom (last), how often
        if outcome is not None:
            asked = (outcome.target.backend.name, outcome.target.model, outcome.attempts)
        elif error is not None and error.tried is not None:
            asked = (*error.tried, error.attempts or 1)  # every attempt failed
        provider, model, attempts = asked
        if hit is not None:
            provider, model = hit.provider, hit.model
        return UsageRecord(
            request_id=self._request_id,
            time=self._time,
            key_id=caller.key_id,
            user=caller.user,
            team=caller.team,
            dialect=self._dialect,
            alias=(self._route.alias if self._route else None)
            or self._model[:MAX_MODEL_NAME]
            or None,
            provider=provider,
            model=model,
            status=status,
            error_type=None if error is None else type(error).__name__,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            usage_estimated=usage.estimated,
            cost_usd=cost or 0.0,
            unpriced=cost is None,
            latency_ms=(time.monotonic() - self._started) * 1000,
            ttft_ms=None if first_byte is None else (first_byte - self._started) * 1000,
            stream=self._stream,
            retries=max(0, attempts - 1),
            fallback_used=outcome.fallback if outcome else None,
            cache_hit=hit is not None,
            cost_saved_usd=self._cost_saved,
        )


def _stopped() -> ServerStopping:
    """The error of a call the worker cut at the end of its shutdown grace."""
    return ServerStopping("the gateway stopped before the answer ended")
