"""How every metered call reaches the metrics: a call hook and an engine listener.

``MetricsHook``, a few milliseconds after a call ended, tallies its end (its usage
record and the facts of the call beside it, ``CallEnd``) with the others that ended then
(``after_batch``: one pass, one ``CallTally`` look-up per label set), the upstream
attempt that answered it included; calls and streams in flight are the call layer's
counts (``Calls.in_flight``), copied at refresh.
``FailedAttempts`` tallies each attempt that failed, as it fails. Neither writes a metric
value: that is ``Metrics.refresh``'s, once a second (``metrics.py``). ``install`` plugs
both in.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from modelway.calls.hooks import CallEnd, CallHook
from modelway.errors import BudgetExceeded, ModelwayError, RateLimited, UpstreamError
from modelway.observability.families import Family, empty_counts
from modelway.observability.metrics import STATUS_CLASSES, CallTally, Metrics, status_class

if TYPE_CHECKING:
    from modelway.calls.opening import Calls
    from modelway.routing.targets import Target
    from modelway.store.records import UsageRecord
    from modelway.store.writer import UsageWriter

_STREAM = {True: "true", False: "false"}


class MetricsHook(CallHook):
    """Each call's end as requests, durations, tokens, cost and its answering attempt
    (counted a little after the call ends, with the others that ended about then; a
    refresh catches up first). Calls in flight are the call layer's count, read by
    ``Metrics.refresh``."""

    later = True

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def after_batch(self, ended: list[CallEnd]) -> None:
        """Tally the calls that ended: one pass, the families' look-ups made once."""
        m = self.metrics
        tallies = m.calls
        call_bounds = m.call_bounds
        ttft_bounds = m.ttft.bounds
        overhead_bounds = m.overhead.bounds
        attempt_bounds = m.attempt_bounds
        per_key = m.per_key
        for end in ended:
            record = end.record
            routed = end.routed
            dialect = record.dialect or ""
            status = record.status
            provider = record.provider or ""
            if status >= 400 and not provider:
                self._refusal(end.error, status)
            alias = (record.alias or "") if routed else ""
            model = record.model or ""
            stream = record.stream
            labels = (dialect, alias, provider, model, STATUS_CLASSES.get(status // 100, "5xx"),
                      _STREAM[stream])  # fmt: skip
            tally = tallies.get(labels)
            if tally is None:
                tally = tallies[labels] = CallTally(call_bounds)
            tally.requests += 1
            latency = record.latency_ms / 1000
            counts = tally.duration
            counts[bisect_left(call_bounds, latency)] += 1
            counts[-1] += latency
            if per_key is not None and record.key_id:
                self._per_key(per_key, record)
            cache = end.cache
            if cache is not None:
                self._cache(end, alias, cache)
            if not provider:
                continue  # refused or unroutable: no upstream, no tokens
            ttft = record.ttft_ms
            spent = latency
            if stream and ttft is not None:
                spent = ttft / 1000
                first = tally.ttft
                if first is None:
                    first = tally.ttft = empty_counts(ttft_bounds)
                first[bisect_left(ttft_bounds, spent)] += 1
                first[-1] += spent
            upstream = end.upstream_seconds
            if upstream is not None and isinstance(end.error, UpstreamError):
                # Its stream broke after the first event (cut short, dropped, stalled): the
                # attempt ended with that error, counted as the failed ones are, to the end.
                spent_upstream = upstream
                if ttft is not None:
                    spent_upstream += max(0.0, latency - ttft / 1000)
                failed_attempt(m, (provider, model, "error"), spent_upstream)
            elif upstream is not None:  # the attempt that answered, under its call's labels
                answered = tally.attempt
                if answered is None:
                    answered = tally.attempt = empty_counts(attempt_bounds)
                answered[bisect_left(attempt_bounds, upstream)] += 1
                answered[-1] += upstream
                if status < 400:
                    own = max(0.0, spent - upstream)
                    mine = tally.overhead
                    if mine is None:
                        mine = tally.overhead = empty_counts(overhead_bounds)
                    mine[bisect_left(overhead_bounds, own)] += 1
                    mine[-1] += own
            tally.input += record.prompt_tokens
            tally.output += record.completion_tokens
            tally.cached += record.cached_tokens
            tally.cache_write += record.cache_write_tokens
            tally.reasoning += record.reasoning_tokens
            tally.cost += record.cost_usd
            tally.retries += record.retries
            if record.fallback_used:
                m.fallbacks.add(1, alias, record.fallback_used)

    def _cache(self, end: CallEnd, alias: str, cache: str) -> None:
        m = self.metrics
        m.cache_requests.add(1, alias, cache)
        saved = end.record.cost_saved_usd
        if saved:
            m.cache_saved_cost.add(saved, alias)
        stored = end.stored_bytes
        if stored:
            m.cache_stored_bytes.add(stored, alias)

    @staticmethod
    def _per_key(families: tuple[Family, Family, Family], record: UsageRecord) -> None:
        requests, tokens, cost = families
        key = record.key_id or ""
        requests.add(1, key, status_class(record.status))
        tokens.add(record.prompt_tokens, key, "input")
        tokens.add(record.completion_tokens, key, "output")
        if record.cost_usd:
            cost.add(record.cost_usd, key)

    def _refusal(self, error: ModelwayError | None, status: int) -> None:
        if isinstance(error, BudgetExceeded):
            self.metrics.refused("budget_exceeded")
        elif isinstance(error, RateLimited):
            self.metrics.refused("rate_limited", error.limit or "")
        elif status == 403:
            self.metrics.refused("model_not_allowed")


class FailedAttempts:
    """Each upstream attempt that failed: its count and duration (an engine
    ``FailedAttempt``); the attempt that answered a call is tallied from its end."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def __call__(self, target: Target, seconds: float, error: BaseException) -> None:
        failed_attempt(self.metrics, (target.backend.name, target.model, "error"), seconds)


def failed_attempt(m: Metrics, labels: tuple[str, str, str], seconds: float) -> None:
    """Tally an upstream attempt that failed after ``seconds``."""
    counts = m.attempt_tallies.get(labels)
    if counts is None:
        counts = m.attempt_tallies[labels] = empty_counts(m.attempt_bounds)
    counts[bisect_left(m.attempt_bounds, seconds)] += 1
    counts[-1] += seconds


def install(calls: Calls, writer: UsageWriter | None, auth: Any = None, **settings: Any) -> Metrics:
    """Metrics for every call ``calls`` opens; the ``Metrics`` to expose and refresh."""
    metrics = Metrics(**settings)
    metrics.watch(calls.engine.router, writer, auth)
    metrics.live = calls
    metrics.catch_up = calls.later.run
    calls.add_hook(MetricsHook(metrics))
    calls.engine.failed_attempts.append(FailedAttempts(metrics))
    return metrics
