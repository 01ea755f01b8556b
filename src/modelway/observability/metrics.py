"""Prometheus metrics for every metered call, summed over the workers of one gateway.

``Metrics`` owns the families (``prometheus-client``). The hot path feeds them from the
metered-call layer only (``call_metrics.py``): ``MetricsHook`` (a ``CallHook``: in-flight
calls, then each call's end, its usage record and answering attempt) and
``FailedAttempts`` (each upstream attempt that failed, from the engine). What a call adds
is tallied by its label set (``CallTally``: one dict look-up and a few additions per
call; an attempt likewise) and
spread over the families and written to the metric values by ``refresh()`` — every
second in each worker and before each scrape — once per label set; each family keeps at
most ``max_series`` label sets, and past that a new set's aliases, providers, models and
key ids are counted as ``other`` (model names come from callers), its bounded labels —
dialect, status class, token type, outcome ... — kept (``families.py``). Facts that live
elsewhere — deployment health, the usage writer, Redis outages — are copied in by
``refresh()`` too, never per request. A worker killed with ``kill -9`` loses at most its
last second.

Several workers: ``modelway serve`` gives its workers one private directory
(``PROMETHEUS_MULTIPROC_DIR``, made by the supervisor with ``mkdtemp``, mode 0700, so no
other gateway on the host shares or wipes it). Each worker's values live in its own
files there, prometheus-client's multiprocess mode, and a scrape of any worker merges
them all: a dead worker's counters stay (they never go backwards), its live gauges go
(``mark_dead``). Without the directory (one process, tests, ``create_app`` embedded) the
metrics are this ``Metrics``' own registry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from modelway import __version__
from modelway.limits.outage import RedisOutage
from modelway.observability.families import Family, empty_counts
from modelway.observability.metric_files import WorkerFiles
from modelway.outages import Outage

if TYPE_CHECKING:
    from modelway.calls.opening import Calls
    from modelway.routing.resolve import Router
    from modelway.store.writer import UsageWriter

#: Set by the supervisor for its workers; prometheus-client reads it at import.
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
DEFAULT_MAX_SERIES = 1000

#: The OpenTelemetry GenAI semantic conventions' buckets (gen_ai.server.request.duration,
#: gen_ai.server.time_to_first_token), in seconds.
REQUEST_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92)  # fmt: skip
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0)  # fmt: skip
#: The gateway's own time is a few hundred microseconds: finer buckets.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25)  # fmt: skip
_STATES = {"healthy": 0, "probing": 1, "cooling": 2}
#: ``status // 100`` -> its class; anything else is ``5xx`` (``status_class``).
STATUS_CLASSES = {2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def status_class(status: int) -> str:
    """``2xx``, ``4xx``, ``5xx`` (a caller that left, 499, is ``4xx``)."""
    return STATUS_CLASSES.get(status // 100, "5xx")


class CallTally:
    """What the calls of one label set added since the last ``refresh``: one dict look-up
    and a few additions per call, spread over the families once a second."""

    __slots__ = ("attempt", "cache_write", "cached", "cost", "duration", "input", "output",
                 "overhead", "reasoning", "requests", "retries", "ttft")  # fmt: skip

    def __init__(self, duration: tuple[float, ...]) -> None:
        self.requests = 0
        self.duration = empty_counts(duration)
        self.ttft: list[float] | None = None
        self.overhead: list[float] | None = None
        #: The upstream attempts that answered these calls (as ``modelway_upstream_*``).
        self.attempt: list[float] | None = None
        self.input = self.output = self.cached = self.cache_write = self.reasoning = 0
        self.cost = 0.0
        self.retries = 0


class Metrics:
    """The gateway's metric families, in a registry of their own."""

    def __init__(self, *, max_series: int = DEFAULT_MAX_SERIES, per_key: bool = False) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_DIR) or None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        call = ["dialect", "alias", "provider", "model"]
        cap = max_series

        self._families: list[Family] = []

        def family(metric: Any, labels: list[str]) -> Family:
            made = Family(metric, labels, cap)
            self._families.append(made)
            return made

        self.requests = family(
            Counter("modelway_requests", "Calls, by how they ended", [*call, "status_class"],
                    registry=r),
            [*call, "status_class"],
        )  # fmt: skip
        self.duration = family(
            Histogram("modelway_request_duration_seconds", "Whole call, admission to last byte",
                      [*call, "stream"], buckets=REQUEST_BUCKETS, registry=r),
            [*call, "stream"],
        )  # fmt: skip
        self.ttft = family(
            Histogram("modelway_time_to_first_token_seconds", "Streamed calls: to the first chunk",
                      call, buckets=TTFT_BUCKETS, registry=r),
            call,
        )  # fmt: skip
        self.upstream = family(
            Histogram("modelway_upstream_duration_seconds",
                      "Each upstream attempt, to its answer or first event",
                      ["provider", "model", "outcome"], buckets=REQUEST_BUCKETS, registry=r),
            ["provider", "model", "outcome"],
        )  # fmt: skip
        self.overhead = family(
            Histogram("modelway_overhead_seconds",
                      "The gateway's own time: a call's duration (a stream's TTFT) minus its "
                      "answering attempt's", ["dialect", "stream"], buckets=OVERHEAD_BUCKETS,
                      registry=r),
            ["dialect", "stream"],
        )  # fmt: skip
        self.tokens = family(
            Counter("modelway_tokens", "Tokens as providers report them",
                    ["type", "provider", "model"], registry=r),
            ["type", "provider", "model"],
        )  # fmt: skip
        self.cost = family(
            Counter("modelway_cost_usd", "Spend at the configured prices", ["provider", "model"],
                    registry=r),
            ["provider", "model"],
        )  # fmt: skip
        self.attempts = family(
            Counter("modelway_upstream_attempts", "Upstream attempts, retries included",
                    ["provider", "model", "outcome"], registry=r),
            ["provider", "model", "outcome"],
        )  # fmt: skip
        self.retries = family(
            Counter("modelway_retries", "Attempts beyond the first", ["alias"], registry=r),
            ["alias"],
        )  # fmt: skip
        self.fallbacks = family(
            Counter("modelway_fallbacks", "Calls answered by a fallback model",
                    ["alias", "fallback"], registry=r),
            ["alias", "fallback"],
        )  # fmt: skip
        self.cache_requests = family(
            Counter("modelway_cache_requests", "Chat calls the response cache took part in",
                    ["alias", "result"], registry=r),
            ["alias", "result"],
        )  # fmt: skip
        self.cache_stored_bytes = family(
            Counter("modelway_cache_stored_bytes", "Bytes of answers stored in the response cache",
                    ["alias"], registry=r),
            ["alias"],
        )  # fmt: skip
        self.cache_saved_cost = family(
            Counter("modelway_cache_saved_cost_usd",
                    "What cache hits would have cost upstream at the configured prices",
                    ["alias"], registry=r),
            ["alias"],
        )  # fmt: skip
        self.in_flight = family(
            Gauge("modelway_in_flight_calls", "Calls admitted and not over", ["dialect"],
                  multiprocess_mode="livesum", registry=r),
            ["dialect"],
        )  # fmt: skip
        self.in_flight_streams = family(
            Gauge("modelway_in_flight_streams", "Streams being answered", ["dialect"],
                  multiprocess_mode="livesum", registry=r),
            ["dialect"],
        )  # fmt: skip
        self.refusals = family(
            Counter("modelway_refusals", "Calls refused before reaching a provider",
                    ["reason", "limit"], registry=r),
            ["reason", "limit"],
        )  # fmt: skip
        # Copied in by refresh() (live state kept elsewhere).
        self.deployment_state = family(
            Gauge("modelway_deployment_state",
                  "0 healthy, 1 probing, 2 cooling",
                  ["deployment"], multiprocess_mode="livemax", registry=r),
            ["deployment"],
        )  # fmt: skip
        self.deployment_in_flight = family(
            Gauge("modelway_deployment_in_flight", "Attempts and streams in flight",
                  ["deployment"], multiprocess_mode="livesum", registry=r),
            ["deployment"],
        )  # fmt: skip
        self.cooldowns = family(
            Counter("modelway_deployment_cooldowns",
                    "Times a deployment was benched, by why: failures, probe_failed, or "
                    "retry_after (its upstream asked to wait)", ["deployment", "reason"],
                    registry=r),
            ["deployment", "reason"],
        )  # fmt: skip
        self.queue_depth = Gauge("modelway_usage_queue_depth", "Usage records not yet written",
                                 multiprocess_mode="livesum", registry=r)  # fmt: skip
        self.written = Counter("modelway_usage_records_written", "Usage records written",
                               registry=r)  # fmt: skip
        self.spill_bytes = Gauge("modelway_usage_spill_bytes", "Size of the usage spill file",
                                 multiprocess_mode="livemax", registry=r)  # fmt: skip
        self.store_errors = Counter("modelway_usage_store_errors", "Failed usage store writes",
                                    registry=r)  # fmt: skip
        self.fail_open = Counter("modelway_redis_fail_open",
                                 "Episodes on in-memory limits: Redis unreachable",
                                 registry=r)  # fmt: skip
        self.dependency_up = Gauge("modelway_dependency_up",
                                   "1 while the store (or Redis) answers, 0 in an outage",
                                   # The value the worker answering the scrape just
                                   # pinged for (the lowest kept a recovered dependency
                                   # down while another worker had not seen it back).
                                   ["dependency"], multiprocess_mode="livemostrecent",
                                   registry=r)  # fmt: skip
        self.per_key: tuple[Family, Family, Family] | None = None
        if per_key:
            self.per_key = (
                family(Counter("modelway_key_requests", "Calls per virtual key (its id)",
                               ["key_id", "status_class"], registry=r), ["key_id", "status_class"]),
                family(Counter("modelway_key_tokens", "Tokens per virtual key",
                               ["key_id", "type"], registry=r), ["key_id", "type"]),
                family(Counter("modelway_key_cost_usd", "Spend per virtual key", ["key_id"],
                               registry=r), ["key_id"]),
            )  # fmt: skip
        build = Gauge("modelway_build_info", "The running version", ["version"],
                      multiprocess_mode="max", registry=r)  # fmt: skip
        build.labels(__version__).set(1)
        #: (dialect, alias, provider, model, status class, stream) -> what its calls added.
        self.calls: dict[tuple[str, str, str, str, str, str], CallTally] = {}
        #: (provider, model, outcome) -> upstream attempts that failed: per-bucket counts, then
        #: the sum (those that answered are in their calls' ``CallTally``).
        self.attempt_tallies: dict[tuple[str, str, str], list[float]] = {}
        #: The calls whose in-flight counts (``Calls.in_flight``) the gauges copy.
        self.live: Calls | None = None
        self.call_bounds = self.duration.bounds
        self.attempt_bounds = self.upstream.bounds
        # What refresh() has copied so far, so counters grow by the difference.
        self._copied: dict[str, float] = {}
        self.router: Router | None = None
        self.writer: UsageWriter | None = None
        self.auth: Any = None
        self.outages: tuple[Outage, ...] = ()
        #: Runs the ``later`` hooks (this one's ``after``) over the calls that ended.
        self.catch_up: Callable[[], None] | None = None

    # --- what the hot path calls --------------------------------------------------------

    def refused(self, reason: str, limit: str = "") -> None:
        """A call (or a key) refused before reaching a provider."""
        self.refusals.add(1, reason, limit)

    # --- what is copied in ---------------------------------------------------------------

    def watch(self, router: Router, writer: UsageWriter | None, auth: Any = None) -> None:
        """Where ``refresh`` reads deployment health, the usage writer and the count of
        refused keys (``auth.failures``) from."""
        self.router, self.writer, self.auth = router, writer, auth

    def refresh(self) -> None:
        """Write what calls added since the last time, and copy in the live facts kept
        elsewhere (not per request)."""
        if self.catch_up is not None:
            self.catch_up()
        self._spread()
        for family in self._families:
            family.flush()
        now = time.monotonic()
        if self.router is not None:
            for states in self.router.deployment_states().values():
                for state in states:
                    name = state.name
                    self.deployment_state.child(name).set(_STATES[state.condition(now)])
                    self.deployment_in_flight.child(name).set(state.in_flight)
                    for reason, count in state.rests.items():
                        # Each reason's series from the start (at 0), so increase() sees
                        # the first benching too.
                        counter = self.cooldowns.child(name, reason)
                        self._grow(counter, f"cooldowns:{name}:{reason}", count)
        writer = self.writer
        if writer is not None:
            self.queue_depth.set(writer.queued)
            self.spill_bytes.set(writer.spill_bytes())
            self._grow(self.written, "written", writer.written)
            self._grow(self.store_errors, "store_errors", writer.store_errors)
        self._grow(self.fail_open, "fail_open", RedisOutage.episodes)
        for outage in self.outages:
            self.dependency_up.labels(outage.name.lower()).set(0 if outage.down else 1)
        if self.auth is not None:
            self._grow(self.refusals.child("auth_failed", ""), "auth_failed", self.auth.failures)

    def _spread(self) -> None:
        """Hand what the calls and attempts tallied to the families they count in."""
        live = self.live
        if live is not None:
            for dialect, count in live.in_flight.items():
                self.in_flight.child(dialect).set(count)
            for dialect, count in live.streams_in_flight.items():
                self.in_flight_streams.child(dialect).set(count)
        calls, self.calls = self.calls, {}
        for (dialect, alias, provider, model, status, stream), tally in calls.items():
            self.requests.add(tally.requests, dialect, alias, provider, model, status)
            self.duration.observe_counts(tally.duration, dialect, alias, provider, model, stream)
            if tally.ttft is not None:
                self.ttft.observe_counts(tally.ttft, dialect, alias, provider, model)
            if tally.overhead is not None:
                self.overhead.observe_counts(tally.overhead, dialect, stream)
            if tally.attempt is not None:
                self.attempts.add(sum(tally.attempt[:-1]), provider, model, "ok")
                self.upstream.observe_counts(tally.attempt, provider, model, "ok")
            if not provider:
                continue
            tokens = self.tokens
            tokens.add(tally.input, "input", provider, model)
            tokens.add(tally.output, "output", provider, model)
            for kind, count in (
                ("cached_input", tally.cached),
                ("cache_write", tally.cache_write),
                ("reasoning", tally.reasoning),
            ):
                if count:
                    tokens.add(count, kind, provider, model)
            if tally.cost:
                self.cost.add(tally.cost, provider, model)
            if tally.retries:
                self.retries.add(tally.retries, alias)
        attempts, self.attempt_tallies = self.attempt_tallies, {}
        for (provider, model, outcome), counts in attempts.items():
            self.attempts.add(sum(counts[:-1]), provider, model, outcome)
            self.upstream.observe_counts(counts, provider, model, outcome)

    def _grow(self, counter: Any, key: str, total: float) -> None:
        done = self._copied.get(key, 0.0)
        if total > done:
            counter.inc(total - done)
            self._copied[key] = total

    def exposition(self) -> bytes:
        """The text a scrape gets: every worker's values merged, or this registry's."""
        self.refresh()
        return self.render()

    def render(self) -> bytes:
        """``exposition`` without ``refresh``: reads only the registry (and the workers'
        files), so it may run off the event loop; it is pure Python and takes ~1 s for
        thousands of series, during which the loop would answer no call."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        WorkerFiles(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
