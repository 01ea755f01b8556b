"""How long an upstream asks to be left alone: its ``retry-after-ms`` or ``Retry-After``
header (delta-seconds or an HTTP date), as ``UpstreamStatusError.retry_after``."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping


def retry_after_seconds(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait that a response's ``retry-after-ms`` or ``Retry-After`` header asks for.

    ``Retry-After`` is delta-seconds or an HTTP date (seconds from ``now`` to it, 0 for a
    date gone by); a value that is neither, or not finite, is ignored.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            if name == "retry-after":
                return _until_date(value, now)
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _until_date(value: str, now: Callable[[], float]) -> float | None:
    """Seconds from ``now`` to an HTTP date (``Wed, 21 Oct 2015 07:28:00 GMT``), if it is one."""
    try:
        moment = email.utils.parsedate_to_datetime(value[:64])
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None  # an HTTP date is always GMT; one without a zone is no HTTP date
    return max(0.0, moment.timestamp() - now())
