"""The calls every face shares: route a request, try targets with retries and failover.

Both the gateway and ``modelway.Client`` go through ``Engine``. A streamed answer is
committed to a target only once its first event arrived; until then a retryable
failure moves on (same target after a backoff, then the next target).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar

import msgspec

from modelway.config import Config, ProviderSettings
from modelway.errors import (
    BadRequest,
    EmptyResponse,
    ModelwayError,
    RateLimited,
    UnknownModel,
)
from modelway.limits import UNLIMITED, MemoryLimiter, RateLimiter, Ticket
from modelway.providers.upstream import Backend, Call
from modelway.routing.attempts import Tries, attempt_once, retry_delay
from modelway.routing.deployments import DeploymentState
from modelway.routing.resolve import Router
from modelway.routing.targets import Route, Target
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelInfo,
    StreamEvent,
)

T = TypeVar("T")
log = logging.getLogger("modelway.engine")
MODELS_CACHE_SECONDS = 60.0
MODELS_LIST_TIMEOUT = 5.0


class Outcome(NamedTuple):
    """Where an answer came from and how many attempts it took."""

    target: Target
    attempts: int
    #: The admission against the deployment's own RPM/TPM caps, settled with real usage.
    deployment_ticket: Ticket = UNLIMITED
    #: Seconds the answering attempt took upstream: to the whole answer, or to a stream's
    #: first event. What the call took beyond it is the gateway's own time.
    upstream_seconds: float = 0.0

    @property
    def fallback(self) -> str | None:
        """The fallback model that answered, when the primary ones could not."""
        return self.target.fallback

    def stream_ended(self, error: ModelwayError | None = None) -> None:
        """A stream held open on this target is over; ``error`` if it broke mid-way."""
        state = self.target.deployment
        if state is not None:
            state.finished()
            if error is not None:
                state.failed(error, time.monotonic())
            else:
                state.stream_succeeded()


class OpenStream(NamedTuple):
    """A streamed answer whose first event has arrived; ``events`` yields all of them."""

    events: AsyncIterator[StreamEvent]
    outcome: Outcome


async def _stream_from(
    first: StreamEvent, rest: AsyncIterator[StreamEvent], outcome: Outcome
) -> AsyncIterator[StreamEvent]:
    error: ModelwayError | None = None
    try:
        yield first
        async for event in rest:
            yield event
    except ModelwayError as exc:
        error = exc
        raise
    finally:
        outcome.stream_ended(error)
        # A caller that stops early closes the upstream call now, not at garbage collection.
        await rest.aclose()  # type: ignore[attr-defined]


class AttemptListener(Protocol):
    """Sees every upstream attempt (metrics count them, traces give each a span).

    ``attempt_started`` runs just before the attempt, in the calling task, and returns a
    handle ``attempt_ended`` gets back with the attempt's seconds and its failure (None on
    success; any exception, cancellation included). Both must be quick and never raise.
    """

    def attempt_started(self, target: Target) -> Any: ...

    def attempt_ended(
        self, target: Target, handle: Any, seconds: float, error: BaseException | None
    ) -> None: ...


#: Sees each upstream attempt that failed (any exception, cancellation included), with its
#: seconds; quick, never raising. The attempt that answered a call is in its ``Outcome``
#: (``upstream_seconds``): what only counts attempts needs no more than these two.
FailedAttempt = Callable[[Target, float, BaseException], None]


class Engine:
    """Routing, retries and failover over the configured providers."""

    def __init__(
        self,
        config: Config,
        environ: Mapping[str, str],
        backends: Mapping[str, Backend] | None = None,
        *,
        rates: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self.router = Router(config, environ, backends)
        #: Enforces deployments' own RPM/TPM caps (shared through Redis by the gateway).
        self.rates: RateLimiter = rates or MemoryLimiter()
        #: Providers whose models could not be listed last time ``models`` asked, and why.
        self.unlisted: dict[str, str] = {}
        self._models_cache: tuple[float, list[ModelInfo]] | None = None
        #: Observers of every upstream attempt (``AttemptListener``), and of each failed one.
        self.listeners: list[AttemptListener] = []
        self.failed_attempts: list[FailedAttempt] = []

    async def aclose(self) -> None:
        await self.router.aclose()

    def connect_provider(
        self, name: str, *, api_key: str | None = None, base_url: str | None = None
    ) -> None:
        """Enable or re-key provider ``name`` at run time; ``BadRequest`` if impossible."""
        known = self.router.settings.get(name) or self.config.providers.get(name)
        try:
            settings = ProviderSettings(
                api_key=api_key,
                base_url=base_url or (known.base_url if known else None),
                headers=known.headers if known else {},
                wire=known.wire if known else None,
                api_version=known.api_version if known else None,
            )
        except ValueError as error:
            raise BadRequest(str(error)) from None
        self.router.connect(name, settings)
        self._models_cache = None

    def disconnect_provider(self, name: str) -> bool:
        """Remove provider ``name``; ``False`` if it was not enabled."""
        removed = self.router.disconnect(name)
        self._models_cache = None
        return removed

    async def attempt_each(
        self,
        route: Route,
        attempt: Callable[[Target], Awaitable[T]],
        *,
        holds: bool = False,
    ) -> tuple[T, Outcome]:
        """Try each target of ``route`` (retrying retryable failures) until one answers.

        Cooling deployments are skipped; retries, and moving on to the next target, stop
        once the route's total time budget is spent (an attempt begun before that has its
        own ``total`` at most).
        With ``holds`` the answer is a stream that stays in flight on its target until
        the caller reports ``Outcome.stream_ended``.
        """
        tries = Tries(time.monotonic() + route.timeouts.total)
        try:
            for target in route.targets:
                if tries.count and time.monotonic() >= tries.deadline:
                    break  # the call's total time is spent: no further deployment is asked
                answered = await self._try_target(target, route, attempt, holds, tries)
                if answered is not None:
                    result, ticket = answered
                    return result, Outcome(target, tries.count, ticket, tries.seconds)
            raise tries.failure(route)
        except ModelwayError as error:
            # Whatever ended the call says how many upstream calls it made (0: every
            # deployment resting or at its cap), in x-modelway-attempts.
            error.attempts = tries.count
            raise

    async def _try_target(
        self,
        target: Target,
        route: Route,
        attempt: Callable[[Target], Awaitable[T]],
        holds: bool,
        tries: Tries,
    ) -> tuple[T, Ticket] | None:
        """The target's answer and its deployment ticket; None to move on to the next target."""
        state = target.deployment
        if state is not None and not state.admit(time.monotonic()):
            return None  # cooling down (a retry below has already waited out its rest)
        retries = route.retries
        for retry in range(retries + 1):
            ticket = UNLIMITED
            if state is not None and (state.rpm or state.tpm):
                try:
                    ticket = await self.rates.admit(
                        state.limit_scope, rpm=state.rpm, tpm=state.tpm, tokens=route.tokens
                    )
                except RateLimited as error:
                    tries.at_cap(error)  # at its own cap: the next deployment answers
                    state.no_verdict()
                    return None
            tries.count += 1
            try:
                return await self._attempt(target, state, attempt, holds, tries), ticket
            except ModelwayError as error:
                tries.last_error = error
                if not error.retryable:
                    if error.fails_over:
                        return None  # this deployment's own key refused: not again, next one
                    raise
                if retry == retries:
                    return None
                delay = retry_delay(state, retry, error, tries.deadline)
                if delay is None:
                    return None
                await asyncio.sleep(delay)
        return None

    async def _attempt(
        self,
        target: Target,
        state: DeploymentState | None,
        attempt: Callable[[Target], Awaitable[T]],
        holds: bool,
        tries: Tries,
    ) -> T:
        listeners = self.listeners
        handles = [listener.attempt_started(target) for listener in listeners] if listeners else ()
        started = time.monotonic()
        try:
            if state is None:  # a direct provider/model call: no deployment health to keep
                result = await attempt(target)
            else:
                result = await attempt_once(target, state, attempt, holds)
        except BaseException as error:
            seconds = time.monotonic() - started
            if isinstance(error, ModelwayError):
                error.tried = (target.backend.name, target.model)
            for listener, handle in zip(listeners, handles, strict=True):
                listener.attempt_ended(target, handle, seconds, error)
            for failed in self.failed_attempts:
                failed(target, seconds, error)
            raise
        tries.seconds = seconds = time.monotonic() - started
        if listeners:
            for listener, handle in zip(listeners, handles, strict=True):
                listener.attempt_ended(target, handle, seconds, None)
        return result

    def route(
        self,
        model: str,
        fallbacks: Sequence[str] = (),
        max_retries: int | None = None,
        *,
        take_turn: bool = True,
    ) -> Route:
        """The route for ``model``, extended by per-call fallback models and retry budget.

        ``take_turn=False`` looks a model up without moving its alias's round-robin turn
        (for answers that make no call: showing a model, counting tokens).
        """
        route = self.router.route(model, take_turn=take_turn)
        if not fallbacks and max_retries is None:
            return route  # the common call: the route as configured, no copy
        if isinstance(fallbacks, str):  # one name would be read letter by letter
            raise BadRequest("fallbacks: a list of model names, not one string")
        if max_retries is not None and (type(max_retries) is not int or max_retries < 0):
            raise BadRequest(f"max_retries: a whole number, 0 or more (not {max_retries!r})")
        targets = list(route.targets)
        for fallback in fallbacks:
            try:
                extra = self.router.route(fallback, take_turn=take_turn).targets
            except UnknownModel:
                # A fallback nothing serves must not stop the primary from being tried.
                log.warning("fallback %r is served by no provider; skipped", fallback)
                continue
            targets.extend(
                t._replace(fallback=t.fallback or fallback) for t in extra if t not in targets
            )
        retries = route.retries if max_retries is None else max_retries
        return route._replace(targets=targets, retries=retries)

    @staticmethod
    def _request_for(request: ChatRequest, target: Target, dialect: str | None) -> ChatRequest:
        # ``extra`` holds fields in the caller's own vocabulary: only a provider of the same
        # wire format understands them (a legacy completions body's are OpenAI's).
        vocabulary = "openai" if dialect == "completions" else dialect
        if request.extra and vocabulary != target.backend.wire:
            choices = request.extra.get("n")
            if choices is not None and choices != 1:
                # Dropped, the caller would get one choice where it counted on several.
                raise BadRequest(
                    f"n: {target.backend.name} answers one choice per call in its format; "
                    "ask with n=1, or call once per choice"
                )
            return msgspec.structs.replace(request, extra={})
        return request

    async def complete(
        self,
        request: ChatRequest,
        *,
        request_id: str,
        dialect: str | None = None,
        fallbacks: Sequence[str] = (),
        max_retries: int | None = None,
        route: Route | None = None,
    ) -> tuple[ChatResponse, Outcome]:
        """A whole answer."""
        chosen = route or self.route(request.model, fallbacks, max_retries)
        call = Call(request_id, chosen.timeouts)

        async def attempt(target: Target) -> ChatResponse:
            upstream_request = self._request_for(request, target, dialect)
            return await target.backend.complete(upstream_request, target.model, call)

        return await self.attempt_each(chosen, attempt)

    async def open_stream(
        self,
        request: ChatRequest,
        *,
        request_id: str,
        dialect: str | None = None,
        fallbacks: Sequence[str] = (),
        max_retries: int | None = None,
        route: Route | None = None,
    ) -> OpenStream:
        """A streamed answer, committed to a target once its first event arrived."""
        chosen = route or self.route(request.model, fallbacks, max_retries)
        call = Call(request_id, chosen.timeouts)

        async def attempt(target: Target) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            upstream_request = self._request_for(request, target, dialect)
            events = target.backend.stream(upstream_request, target.model, call)
            try:
                return await anext(events), events
            except StopAsyncIteration:
                raise EmptyResponse(
                    "the upstream stream was empty", provider=target.backend.name
                ) from None

        (first, rest), outcome = await self.attempt_each(chosen, attempt, holds=True)
        return OpenStream(_stream_from(first, rest, outcome), outcome)

    async def embeddings(
        self, request: EmbeddingRequest, *, request_id: str, route: Route | None = None
    ) -> tuple[EmbeddingResponse, Outcome]:
        """Vectors for the request's texts."""
        chosen = route or self.route(request.model)
        call = Call(request_id, chosen.timeouts)

        async def attempt(target: Target) -> EmbeddingResponse:
            return await target.backend.embeddings(request, target.model, call)

        return await self.attempt_each(chosen, attempt)

    async def models(self) -> list[ModelInfo]:
        """Aliases, then every enabled provider's models as ``provider/model``.

        Provider listings are fetched concurrently and cached; a provider that cannot be
        listed is left out rather than failing the whole answer.
        """
        now = time.monotonic()
        if self._models_cache and now - self._models_cache[0] < MODELS_CACHE_SECONDS:
            return self._models_cache[1]
        infos = [ModelInfo(id=name, owned_by="modelway") for name in self.router.aliases]
        names = [n for n in [*self.router.settings, "mock"] if n in self.router.backends]
        listings = await asyncio.gather(
            *(self._list(name) for name in dict.fromkeys(names)), return_exceptions=False
        )
        for name, models in zip(dict.fromkeys(names), listings, strict=True):
            infos.extend(ModelInfo(id=f"{name}/{model}", owned_by=name) for model in models)
        self._models_cache = (now, infos)
        return infos

    async def _list(self, name: str) -> list[str]:
        try:
            async with asyncio.timeout(MODELS_LIST_TIMEOUT):
                listed = await self.router.backends[name].list_models()
        except ModelwayError as error:
            self.unlisted[name] = error.message
            return []
        except TimeoutError:
            self.unlisted[name] = f"no answer within {MODELS_LIST_TIMEOUT:g} s"
            return []
        except Exception:
            # A listing is a courtesy: a fault of ours in reading one provider's answer
            # is logged, and must not turn every caller's /v1/models into a 500.
            log.exception("could not list the models of %s", name)
            self.unlisted[name] = "its listing could not be read (the log says why)"
            return []
        self.unlisted.pop(name, None)
        return listed
