"""The order in which an alias's deployments are tried, per the alias's strategy.

``round-robin`` takes turns (a deployment of weight 2 gets two turns in a cycle);
``weighted`` draws at random in proportion to weight; ``least-busy`` prefers the fewest
calls in flight; ``lowest-latency`` prefers the lowest moving average of time to first
byte (a deployment not yet measured goes first, so it gets measured; one call in
``EXPLORE_EVERY`` goes to each deployment in turn, so one measured slow once, a cold
connection or a bad minute, is measured again and not left out for good). Ties keep the
round-robin order, so equal deployments still share the load.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from modelway.config import Strategy
from modelway.routing.targets import Target

#: Under ``lowest-latency``, one call in this many is a measuring call: the deployments'
#: turn order, not their latency, decides which goes first.
EXPLORE_EVERY = 20


def rotation(targets: Sequence[Target], turn: int) -> list[Target]:
    """Distinct targets starting at this turn of a cycle where weights repeat a target."""
    cycle = [target for target in targets for _ in range(target.weight)]
    start = turn % len(cycle)
    return list(dict.fromkeys(cycle[start:] + cycle[:start]))


def weighted_draw(targets: Sequence[Target], rng: random.Random) -> list[Target]:
    """All targets, drawn one by one at random in proportion to their weights."""
    left = list(targets)
    order: list[Target] = []
    while left:
        chosen = rng.choices(left, weights=[t.weight for t in left])[0]
        order.append(chosen)
        left.remove(chosen)
    return order


def order_targets(
    strategy: Strategy, targets: Sequence[Target], turn: int, rng: random.Random
) -> list[Target]:
    """``targets`` in the order ``strategy`` tries them for this request."""
    if len(targets) == 1:
        return list(targets)
    if strategy == "weighted":
        return weighted_draw(targets, rng)
    if strategy == "lowest-latency":
        if turn % EXPLORE_EVERY == EXPLORE_EVERY - 1:
            # A measuring call: each deployment's turn comes every EXPLORE_EVERY * n calls
            # (not-yet-measured ones still go first).
            ordered = rotation(targets, turn // EXPLORE_EVERY)
            ordered.sort(
                key=lambda t: t.deployment is not None and t.deployment.latency is not None
            )
        else:
            ordered = rotation(targets, turn)
            ordered.sort(key=lambda t: (t.deployment.latency or 0.0) if t.deployment else 0.0)
        return ordered
    ordered = rotation(targets, turn)
    if strategy == "least-busy":
        ordered.sort(key=lambda t: t.deployment.in_flight if t.deployment else 0)
    return ordered
