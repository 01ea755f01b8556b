"""``--url``: a running gateway's root, checked before anything is sent to it."""

from __future__ import annotations

from urllib.parse import urlsplit

import typer


def gateway_url(value: str | None) -> str | None:
    """``value`` as an ``http(s)://host[:port][/path]`` URL, without the trailing slash.

    Refused with a one-line reason (the value never repeated: it may hold a password):
    no scheme (``127.0.0.1:8080`` reads as scheme ``127.0.0.1``), a user name or password
    in it (the key goes in ``--key``, never in a URL a banner or an error would show), a
    port that is no port.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise typer.BadParameter("the port is not a number from 1 to 65535") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(
            "a gateway's URL starts with http:// or https://, e.g. http://127.0.0.1:8080"
        )
    if parts.username is not None or parts.password is not None:
        raise typer.BadParameter(
            "no user name or password in the URL: give the gateway's key with --key"
        )
    if not port_ok:
        raise typer.BadParameter("the port is not a number from 1 to 65535")
    if parts.query or parts.fragment:
        raise typer.BadParameter("the gateway's root URL, without ?query or #fragment")
    return text.rstrip("/")
