"""Key changes announced through Redis, so every worker and replica applies them at once.

Each worker process remembers the keys it verified (``store.verifier``) and re-reads a
remembered key from the store once its entry is 4 s old: that alone bounds how long a
revoked or changed key keeps working anywhere (5 s), with or without Redis. With Redis
(``redis.url`` / ``REDIS_URL``), whoever changes a key — the admin API and dashboard
(revoke, edit, a deleted account's keys) or ``modelway keys revoke`` on the store —
also publishes its id on one channel, and every worker of every replica, subscribed to
it, marks its entry stale on hearing it: the next call with that key re-reads its row
(one SELECT, no Argon2) and is refused if it was revoked.

The announcement is a shortcut, never the only way: a publish that fails is logged and
the store re-read still applies. A listener that loses Redis reconnects every
``retry_seconds``; having maybe missed announcements meanwhile, it then marks every
remembered key stale. A connection that went quiet is asked (a ping after
``ping_seconds`` of silence; no answer within as long again and it counts as lost), so a
half-open one (a dropped NAT entry, a host gone without a reset) is noticed in seconds,
not when the kernel's keepalive gives up after hours. The listener uses a connection of
its own (a subscription holds one for good), not the limits' pool with its half-second
timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from modelway.background import in_background
from modelway.store.verifier import KeyVerifier

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger("modelway.gateway")

#: The channel key ids are published on (every gateway sharing the Redis hears them).
CHANNEL = "mw:keys:changed"
#: Seconds to wait on Redis to connect or to take a publish.
CONNECT_SECONDS = 1.0
#: Seconds between attempts to subscribe again after losing Redis.
RETRY_SECONDS = 1.0
#: Seconds of silence on the subscription before Redis is pinged; as long again without
#: an answer and the connection counts as lost.
PING_SECONDS = 10.0


def connect(redis_url: str) -> Redis:
    """A client for announcements: its own connections, and no read timeout on the
    subscription (it waits for news; ``KeyChanges`` pings it when it is quiet)."""
    from redis.asyncio import Redis

    return Redis.from_url(redis_url, socket_connect_timeout=CONNECT_SECONDS, socket_keepalive=True)


class KeyChanges:
    """``changed(key_id)``: this worker's entry goes stale now, and the others hear of it.

    ``verifier`` is this process's (None for a process that serves no calls, such as the
    CLI); ``redis`` None: no announcements, each worker learns within the re-read bound.
    """

    def __init__(
        self,
        verifier: KeyVerifier | None,
        redis: Redis | None,
        *,
        retry_seconds: float = RETRY_SECONDS,
        ping_seconds: float = PING_SECONDS,
    ) -> None:
        self._verifier = verifier
        self._redis = redis
        self._retry_seconds = retry_seconds
        self._ping_seconds = ping_seconds
        self._outage_logged = False
        #: Announcements heard, and subscriptions made (one more after each outage).
        self.heard = 0
        self.subscriptions = 0

    async def changed(self, *key_ids: str) -> None:
        """Keys were revoked or changed in the store: apply it here, announce it there
        (all of them at once, within one ``CONNECT_SECONDS`` however many)."""
        if self._verifier is not None:
            for key_id in key_ids:
                self._verifier.expire(key_id)
        redis = self._redis
        if redis is None or not key_ids:
            return
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(CONNECT_SECONDS), redis.pipeline(transaction=False) as pipe:
                for key_id in key_ids:  # one connection and one round trip, however many
                    pipe.publish(CHANNEL, key_id)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            log.warning(
                "could not announce a key change through Redis (%s); other workers "
                "apply it within 5 s",
                type(error).__name__,
            )

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Hear announcements for as long as the block runs (no-op without Redis); the
        Redis client is closed at its end."""
        if self._redis is None or self._verifier is None:
            yield
            return
        try:
            async with in_background(self._listen(self._verifier, self._redis)):
                yield
        finally:
            await self.aclose()

    async def _listen(self, verifier: KeyVerifier, redis: Redis) -> None:
        from redis.exceptions import RedisError

        missed = False  # whether announcements may have gone by unheard
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    async with asyncio.timeout(CONNECT_SECONDS):
                        await pubsub.subscribe(CHANNEL)
                    self.subscriptions += 1
                    if missed:
                        verifier.expire_all()
                        log.info("hearing key changes through Redis again")
                    missed, self._outage_logged = False, False
                    await self._hear_until_lost(verifier, pubsub)
            except Exception as error:
                if not self._outage_logged:
                    self._outage_logged = True
                    expected = isinstance(error, RedisError | OSError)
                    log.warning(
                        "not hearing key changes through Redis (%s); this worker applies "
                        "other workers' changes within 5 s meanwhile",
                        type(error).__name__,
                        exc_info=not expected,
                    )
            missed = True
            await asyncio.sleep(self._retry_seconds)

    async def _hear_until_lost(self, verifier: KeyVerifier, pubsub: PubSub) -> None:
        """Announcements as they come; Redis pinged after each quiet ``ping_seconds``, and
        the connection given up when even that goes unanswered as long again."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=self._ping_seconds)
            if message is not None:
                pinged = False  # anything at all (a pong too) says the connection lives
                self._hear(verifier, message)
            elif pinged:
                raise ConnectionError("Redis did not answer a ping on the subscription")
            else:
                await pubsub.ping()
                pinged = True

    def _hear(self, verifier: KeyVerifier, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        data = message.get("data")
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        if isinstance(data, str):
            self.heard += 1
            verifier.expire(data)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
