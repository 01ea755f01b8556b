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
