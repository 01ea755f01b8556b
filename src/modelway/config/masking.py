"""Show a secret in output without revealing it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

#: Below this length even a 5-character glimpse gives away too much of the secret.
_SHORTEST_PARTLY_SHOWN = 12


def mask_secret(value: str | None) -> str:
    """Return ``sk-…Xy`` for a long secret, ``****`` for a short one, ``(empty)`` for an
    empty one (``api_key: ${KEY}`` with ``KEY`` set to nothing) and ``-`` for none."""
    if value is None:
        return "-"
    if not value:
        return "(empty)"
    if len(value) < _SHORTEST_PARTLY_SHOWN:
        return "****"
    return f"{value[:3]}…{value[-2:]}"


def shown_url(url: str) -> str:
    """A URL fit to print: a password in it and every query value are masked
    (``http://admin:****@host/v1?api_key=****``); the rest is as given."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:****@{host}" if colon else f"{user}@{host}"
    query = "&".join(
        f"{name}=****" if value else name for name, value in parse_qsl(parts.query, True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
