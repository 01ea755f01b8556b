"""``X-Request-ID``: taken from the caller (when sane) or generated, and returned."""

from __future__ import annotations

import itertools
import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SANE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestIds:
    """Unique ids, cheaper than ``uuid4``: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"

    def for_request(self, scope: Scope) -> str:
        """The ASGI request's ``X-Request-ID`` when it is sane, else a fresh id."""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                return self.given_or_new(value.decode("latin-1"))
        return self.next()

    def given_or_new(self, given: str | None) -> str:
        """``given`` (the caller's ``X-Request-ID``) when it is sane, else a fresh id."""
        if given is not None and _SANE.match(given):
            return given
        return self.next()


class RequestIdMiddleware:
    """Puts the id in ``scope["state"]["request_id"]`` and on every response."""

    def __init__(self, app: ASGIApp, ids: RequestIds | None = None) -> None:
        self.app = app
        self._ids = ids or RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._ids.for_request(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
