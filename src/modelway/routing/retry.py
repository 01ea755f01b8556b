"""When and how long to wait before asking an upstream again.

Hand-written rather than tenacity: the policy spans several targets (retry one,
then fail over to the next) and stops the moment a byte has reached the caller,
which a retry-one-callable library does not model.
"""

from __future__ import annotations

import random

from modelway.errors import ModelwayError

BASE_DELAY = 0.5
MAX_DELAY = 8.0
#: A ``Retry-After`` longer than this is not waited for; the next target is tried instead.
MAX_RETRY_AFTER = 30.0


def backoff_seconds(attempt: int, error: ModelwayError | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based) after ``error``.

    Exponential backoff with full jitter, but never sooner than the upstream's
    ``Retry-After``.
    """
    delay = random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1)))
    retry_after = None if error is None else error.retry_after
    if retry_after is not None:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER))
    return delay


def should_retry_same_target(error: ModelwayError) -> bool:
    """A retryable error whose ``Retry-After`` (if any) is short enough to wait for."""
    retry_after = error.retry_after
    return error.retryable and (retry_after is None or retry_after <= MAX_RETRY_AFTER)
