"""Show a secret in output without revealing it."""

from __future__ import annotations

#: Below this length even a 5-character glimpse gives away too much of the secret.
_SHORTEST_PARTLY_SHOWN = 12


def mask_secret(value: str | None) -> str:
    """Return ``sk-…Xy`` for a long secret, ``****`` for a short one and ``-`` for none."""
    if value is None:
        return "-"
    if len(value) < _SHORTEST_PARTLY_SHOWN:
        return "****"
    return f"{value[:3]}…{value[-2:]}"
