"""Metered calls whose usage records go to the store: as the gateway and the terminal chat run."""

from __future__ import annotations

from collections.abc import Mapping

from modelway.cache.responses import ResponseCache
from modelway.calls.accounts import Accounts
from modelway.calls.opening import Calls
from modelway.config import Config
from modelway.engine import Engine
from modelway.limits import Limits
from modelway.observability import tracing
from modelway.store import Store, data_dir
from modelway.store.writer import UsageWriter

#: How many worker processes ``modelway serve`` runs (set for its workers to read).
WORKERS_VARIABLE = "MODELWAY_WORKERS"


def limit_processes(config: Config, environ: Mapping[str, str]) -> int:
    """The processes that share Redis's limits: ``redis.replicas`` times this replica's
    workers, each of which limits to its own share while Redis is down."""
    workers = environ.get(WORKERS_VARIABLE, "")
    return config.redis.replicas * (int(workers) if workers.isdigit() and int(workers) > 0 else 1)


def stored_calls(config: Config, environ: Mapping[str, str], store: Store) -> Calls:
    """Calls limited and cached as ``REDIS_URL`` says (else in memory), recorded in batches
    to ``store``.

    Usage records that cannot reach the store wait in ``usage-spill.jsonl`` in the data
    directory. ``Calls.aclose`` flushes them.
    """
    limits = Limits.from_environment(
        config.redis_url(environ), replicas=limit_processes(config, environ)
    )
    engine = Engine(config, environ, rates=limits.rates)
    writer = UsageWriter(store, data_dir(environ) / "usage-spill.jsonl", outage=store.outage)
    writer.start()
    # In the limits' Redis when there is one, so replicas share entries and idempotency keys.
    cache = ResponseCache.build(config.cache, config.models, limits.redis, limits.outage)
    accounts = Accounts(
        limits, writer, config.prices, config.budgets, config.limits, on_file=writer
    )
    calls = Calls(engine, accounts, cache=cache)
    # First, so the request log can name each call's trace (nothing without OTEL_* set).
    tracing.install(calls, environ)
    if config.logging.requests:
        # Imported here: the request log is a call hook, so it imports ``modelway.calls``.
        from modelway.observability.request_log import RequestLog

        calls.add_hook(RequestLog())  # one line per request (docs/observability.md)
    return calls
