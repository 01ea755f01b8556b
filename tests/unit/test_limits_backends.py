"""The Limits facade: memory without a Redis URL, Redis with one (nothing connects at build)."""

from __future__ import annotations

import pytest

from modelway.limits import BudgetBook, Limits, MemoryLimiter, RedisBudgetBook, RedisLimiter


async def test_without_a_redis_url_limits_live_in_memory() -> None:
    limits = Limits.from_environment(None)
    assert isinstance(limits.rates, MemoryLimiter)
    assert isinstance(limits.budgets, BudgetBook)
    assert limits.backend == "memory"
    assert await limits.ping()
    await limits.aclose()


async def test_with_a_redis_url_limits_share_one_client_and_connect_lazily() -> None:
    limits = Limits.from_environment("redis://:hunter2@127.0.0.1:1/0")
    assert isinstance(limits.rates, RedisLimiter)
    assert isinstance(limits.budgets, RedisBudgetBook)
    assert limits.backend == "redis"
    await limits.aclose()


def test_a_malformed_redis_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="REDIS_URL is not a Redis URL") as refused:
        Limits.from_environment("http://:hunter2@cache:6379")
    assert "hunter2" not in str(refused.value)


def test_an_idle_gateway_without_redis_never_imports_it() -> None:
    import subprocess
    import sys

    check = (
        "import sys, asyncio; from modelway.limits import Limits; "
        "import modelway.gateway.app; Limits.from_environment(None); "
        "print('redis' in sys.modules, 'sqlalchemy.dialects.postgresql' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("workers", "processes"), [("2", 6), ("1", 3), (None, 3), ("0", 3), ("two", 3), ("-2", 3)]
)
def test_each_worker_of_each_replica_limits_to_its_share_while_redis_is_down(
    workers: str | None, processes: int
) -> None:
    from modelway.calls.stored import WORKERS_VARIABLE, limit_processes
    from modelway.config import parse_config

    config = parse_config("redis: {replicas: 3}\n", {})
    environ = {} if workers is None else {WORKERS_VARIABLE: workers}
    assert limit_processes(config, environ) == processes
