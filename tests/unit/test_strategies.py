"""Which deployment an alias tries first, per strategy."""

from __future__ import annotations

import random
from collections import Counter

from modelway.config import Cooldown
from modelway.routing.deployments import DeploymentState
from modelway.routing.strategies import EXPLORE_EVERY, order_targets
from modelway.routing.targets import Target
from tests.unit.fakes import ScriptedBackend


def deployments(*weights: int) -> list[Target]:
    return [
        Target(ScriptedBackend(f"d{i}"), "m", DeploymentState(f"d{i}", Cooldown()), weight)
        for i, weight in enumerate(weights)
    ]


def first_names(strategy: str, targets: list[Target], turns: int) -> list[str]:
    rng = random.Random(7)
    return [
        order_targets(strategy, targets, turn, rng)[0].backend.name  # type: ignore[arg-type]
        for turn in range(turns)
    ]


def test_round_robin_takes_turns_and_tries_every_deployment() -> None:
    targets = deployments(1, 1, 1)
    assert first_names("round-robin", targets, 6) == ["d0", "d1", "d2", "d0", "d1", "d2"]
    assert len(order_targets("round-robin", targets, 0, random.Random())) == 3


def test_weighted_draws_in_proportion_to_weight() -> None:
    counts = Counter(first_names("weighted", deployments(3, 1), 4000))
    assert 2700 < counts["d0"] < 3300
    assert counts["d0"] + counts["d1"] == 4000


def test_least_busy_prefers_the_fewest_calls_in_flight() -> None:
    targets = deployments(1, 1, 1)
    for state, busy in zip((t.deployment for t in targets), (3, 0, 1), strict=True):
        assert state is not None
        state.in_flight = busy
    assert set(first_names("least-busy", targets, 5)) == {"d1"}


def test_least_busy_shares_load_between_equally_idle_deployments() -> None:
    assert set(first_names("least-busy", deployments(1, 1), 4)) == {"d0", "d1"}


def test_lowest_latency_prefers_the_fastest_once_measured_and_tries_unmeasured_first() -> None:
    targets = deployments(1, 1, 1)
    slow, fast, unmeasured = (t.deployment for t in targets)
    assert slow is not None and fast is not None and unmeasured is not None
    slow.succeeded(0.9)
    fast.succeeded(0.1)
    assert set(first_names("lowest-latency", targets, 3)) == {"d2"}
    unmeasured.succeeded(0.5)
    assert set(first_names("lowest-latency", targets, 3)) == {"d1"}


def test_lowest_latency_measures_a_slow_deployment_again_now_and_then() -> None:
    # Measured slow once (a cold connection), a deployment was never asked again while
    # another was faster: one call in EXPLORE_EVERY goes to each deployment in turn.
    targets = deployments(1, 1, 1)
    for state, seconds in zip((t.deployment for t in targets), (0.3, 0.01, 0.2), strict=True):
        assert state is not None
        state.succeeded(seconds)
    firsts = Counter(first_names("lowest-latency", targets, 3 * 10 * EXPLORE_EVERY))
    assert firsts == {"d1": 3 * 10 * EXPLORE_EVERY - 20, "d0": 10, "d2": 10}
