"""Failed checks of unverified keys, limited per client address and per key prefix.

A key this worker has not verified yet costs one Argon2 run to check (64 MiB and
~0.1-0.2 s of CPU), and the 8-character prefix that finds its stored hash is part of
every copy of a real key, revoked ones too. So an address may cause only so many failed
checks per window (``server.key_checks``): ``failures_per_address`` in all, and
``failures_per_prefix`` for keys with one prefix. Past either, that address's
unverified keys are answered 429 with ``Retry-After`` before anything is looked up.

Never limited: a key already verified (``KeyVerifier.remembered``), from any address;
and keys from other addresses — knowing a prefix does not let an attacker lock its
owner out. What many addresses at once can cost is bounded by the verifier's
``concurrent`` and ``waiting``; a check is ``suspect`` there, and waits behind every
other, when its address or its prefix (from any address) has failures in the window —
so keys from many addresses hammering one prefix delay only that prefix's new keys.

Sign-ins to the admin dashboard and to self-service sign-up's ``/auth/keys`` (a
master key or a password in a body) are counted against the same per-address failures
(``attempt``): one budget of wrong guesses, whichever door they knock on. A sign-up
(``/auth/register``) is counted there too, whatever its answer (``spend``): it hashes a
password with the same Argon2 profile, and counting only its failures would let an
address buy Argon2 runs at will by registering new emails.

Counting reuses ``MemoryLimiter``'s token reservation: each check reserves one failure
before it runs (so a burst cannot get ahead of the count), and a check that passes, or
never ran (store down, queue full), is refunded. The counts are per worker process.
The address is the client's (an IPv6 client's /64): the TCP peer's, or what a proxy in
``server.trusted_proxies`` forwarded (``gateway.proxies``).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from modelway.config import KeyChecks
from modelway.errors import AuthenticationError, RateLimited
from modelway.limits import MemoryLimiter, Ticket, format_reset
from modelway.store.keys import key_prefix
from modelway.store.records import KeyRecord

log = logging.getLogger("modelway.auth")
CODE = "too_many_failed_keys"
_BY_ADDRESS = "too many failed API key checks from this address"
_BY_PREFIX = "too many failed checks of API keys with this prefix from this address"
#: A prefix's failures from every address are counted only to order checks, never to
#: refuse one: that would let anyone who knows a prefix lock its owner out.
_NEVER = 2**62
T = TypeVar("T")


def client_scope(host: str | None) -> str:
    """Whose failures a check counts against: the peer's IP address, an IPv6 peer's /64."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host  # not an IP address (a Unix socket, a test client's name)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # One host is given a whole /64: counting single addresses would count nothing.
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class KeyAttempts:
    """``await checked(key, client, check)``: ``check(key)`` within the failure limits."""

    def __init__(self, settings: KeyChecks, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._failures = MemoryLimiter(window=settings.window, clock=clock)
        self._running: dict[str, asyncio.Task[KeyRecord]] = {}

    async def checked(
        self,
        key: str,
        client: str | None,
        check: Callable[[str, bool], Awaitable[KeyRecord]],
    ) -> KeyRecord:
        """``check(key, suspect)`` if ``client``'s address may still fail; else ``RateLimited``.

        Copies of one key presented while its check runs (a client's first burst on a
        new key) wait for that check: one count, one Argon2 run, never a 429 for a burst.
        """
        running = self._running.get(key)
        if running is None:
            running = asyncio.create_task(self._checked_once(key, client, check))
            self._running[key] = running
            running.add_done_callback(functools.partial(self._finished, key))
        # Shielded: a caller that goes away must not cancel the check others wait for.
        return await asyncio.shield(running)

    def _finished(self, key: str, task: asyncio.Task[KeyRecord]) -> None:
        del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter has already seen it

    async def _checked_once(
        self,
        key: str,
        client: str | None,
        check: Callable[[str, bool], Awaitable[KeyRecord]],
    ) -> KeyRecord:
        address = client_scope(client)
        tickets = await self._reserve(address, key_prefix(key))
        # Failures (or other checks under way) besides this one, by address or prefix.
        suspect = any(ticket.tokens_used > 1 for ticket in tickets)
        try:
            record = await check(key, suspect)
        except AuthenticationError:
            self._failed(address, tickets)
            raise
        except BaseException:
            await self._refund(tickets)  # not a failed check: the check did not run
            raise
        await self._refund(tickets)
        return record

    async def attempt(self, client: str | None, check: Callable[[], Awaitable[T]]) -> T:
        """``check()`` (a sign-in) if ``client``'s address may still fail; else ``RateLimited``.

        An ``AuthenticationError`` from ``check`` counts as a failure of that address.
        """
        address = client_scope(client)
        tickets = await self._reserve(address, None)
        try:
            result = await check()
        except AuthenticationError:
            self._failed(address, tickets)
            raise
        except BaseException:
            await self._refund(tickets)
            raise
        await self._refund(tickets)
        return result

    async def spend(self, client: str | None, action: Callable[[], Awaitable[T]]) -> T:
        """``action()`` if ``client``'s address may still fail, counted as one failure
        whatever it answers; else ``RateLimited``. For work as dear as a wrong guess that
        an unauthenticated caller may ask for even when it succeeds (a sign-up)."""
        address = client_scope(client)
        tickets = await self._reserve(address, None)
        self._failed(address, tickets)  # kept, never refunded: the Argon2 run is paid
        return await action()

    async def _reserve(self, address: str, prefix: str | None) -> list[Ticket]:
        """One failure reserved on each of the address's counters, or ``RateLimited``."""
        settings = self._settings
        counters = [(f"address {address}", settings.failures_per_address, _BY_ADDRESS)]
        if prefix is not None:
            counters += [
                (f"prefix {prefix} from {address}", settings.failures_per_prefix, _BY_PREFIX),
                (f"prefix {prefix}", _NEVER, ""),
            ]
        tickets: list[Ticket] = []
        for scope, limit, message in counters:
            try:
                tickets.append(await self._failures.admit(scope, tpm=limit, tokens=1))
            except RateLimited as refused:
                await self._refund(tickets)
                raise _refusal(message, refused.retry_after) from None
        return tickets

    async def _refund(self, tickets: list[Ticket]) -> None:
        for ticket in tickets:
            await self._failures.settle(ticket, 0)

    def _failed(self, address: str, tickets: list[Ticket]) -> None:
        for ticket in tickets:
            if ticket.tokens_used == ticket.token_limit:  # said once, as a limit is reached
                log.warning(
                    "unverified API keys from %s are refused for a while: %d failed checks "
                    "within %g s (%s)",
                    address,
                    ticket.tokens_used,
                    self._settings.window,
                    "one key prefix" if ticket.scope.startswith("prefix") else "any key",
                )


def _refusal(message: str, retry_after: float | None) -> RateLimited:
    wait = f"; try again in {format_reset(retry_after)}" if retry_after is not None else ""
    return RateLimited(message + wait, retry_after=retry_after, code=CODE)
