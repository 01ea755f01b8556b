"""Key changes through a real redis-server: a revocation made anywhere reaches every
worker's remembered keys at once, not at their next re-read (``gateway.key_changes``).

The verifiers' clock stands still in these tests, so a remembered key is never re-read
on its own: whatever refuses a revoked key here was told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from modelway.cli.admin_client import open_admin
from modelway.errors import AuthenticationError
from modelway.gateway import key_changes
from modelway.gateway.key_changes import CHANNEL, KeyChanges
from modelway.store import KeyVerifier, Store, database_url
from modelway.store import verifier as verifier_module
from tests.polling import eventually
from tests.redis_server import free_port, restartable_redis, running_redis
from tests.unit.gateways import in_process_gateway
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)
from tests.unit.test_store_verifier import Clock

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The verifiers' clock, standing still: no entry goes stale by itself."""
    clock = Clock()
    monkeypatch.setattr(verifier_module, "time", clock)
    return clock


async def refused(verifier: KeyVerifier, plaintext: str) -> str:
    with pytest.raises(AuthenticationError) as error:
        await verifier.verify(plaintext)
    return error.value.message


async def test_a_revocation_announced_by_one_worker_is_applied_by_another_at_once(
    store: Store, redis_url: str
) -> None:
    record, plaintext = await store.keys.create("shared")
    here, there = KeyVerifier(store), KeyVerifier(store)
    announcing = KeyChanges(here, key_changes.connect(redis_url))
    hearing = KeyChanges(there, key_changes.connect(redis_url))
    async with hearing.listening():
        await eventually(lambda: hearing.subscriptions == 1)
        assert await here.verify(plaintext) == record
        assert await there.verify(plaintext) == record

        assert await store.keys.revoke(record.id)
        # Not told yet: the other worker still trusts what it remembered.
        assert await there.verify(plaintext) == record

        await announcing.changed(record.id)
        assert await refused(here, plaintext) == verifier_module.REVOKED  # this worker: now
        await eventually(lambda: hearing.heard == 1)
        assert await refused(there, plaintext) == verifier_module.REVOKED
    await announcing.aclose()


async def test_an_edit_announced_is_read_again_without_argon2(
    store: Store, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, plaintext = await store.keys.create("edited", rpm=10)
    there = KeyVerifier(store)
    assert (await there.verify(plaintext)).rpm == 10
    runs: list[str] = []

    async def counting(secret_hash: str, secret: str) -> bool:
        runs.append(secret_hash)
        return True

    monkeypatch.setattr(verifier_module, "secret_matches", counting)
    hearing = KeyChanges(there, key_changes.connect(redis_url))
    announcing = KeyChanges(None, key_changes.connect(redis_url))  # the CLI's: no verifier
    async with hearing.listening():
        await eventually(lambda: hearing.subscriptions == 1)
        await store.keys.update(record.id, {"rpm": 20})
        await announcing.changed(record.id)
        await eventually(lambda: hearing.heard == 1)
        assert (await there.verify(plaintext)).rpm == 20
    await announcing.aclose()
    assert runs == []  # re-read by id, not verified again


async def test_without_redis_a_change_applies_to_its_own_worker_only(store: Store) -> None:
    record, plaintext = await store.keys.create("local")
    here, there = KeyVerifier(store), KeyVerifier(store)
    await here.verify(plaintext)
    await there.verify(plaintext)
    await store.keys.revoke(record.id)

    await KeyChanges(here, None).changed(record.id)

    assert await refused(here, plaintext) == verifier_module.REVOKED
    assert await there.verify(plaintext) == record  # until its re-read, 4 s on a real clock


async def test_a_worker_that_lost_redis_reads_every_key_again_once_it_is_back(
    store: Store,
) -> None:
    record, plaintext = await store.keys.create("missed")
    there = KeyVerifier(store)
    await there.verify(plaintext)
    with restartable_redis() as redis:
        hearing = KeyChanges(there, key_changes.connect(redis.url), retry_seconds=0.05)
        async with hearing.listening():
            await eventually(lambda: hearing.subscriptions == 1)
            redis.stop(kill=True)
            await store.keys.revoke(record.id)  # announced to nobody: Redis is away
            assert await there.verify(plaintext) == record
            redis.start()
            await eventually(lambda: hearing.subscriptions == 2)
            assert await refused(there, plaintext) == verifier_module.REVOKED
    assert hearing.heard == 0


async def test_a_subscription_redis_dropped_is_made_again_and_every_key_read_again(
    store: Store, redis_url: str
) -> None:
    # Redis closing the connection (a restart, a failover, CLIENT KILL) may have lost
    # announcements: redis-py raises on the next read and the listener subscribes anew,
    # then re-reads every key; were redis-py to reconnect by itself, this would fail.
    record, plaintext = await store.keys.create("dropped")
    there = KeyVerifier(store)
    await there.verify(plaintext)
    hearing = KeyChanges(there, key_changes.connect(redis_url), retry_seconds=0.05)
    admin = Redis.from_url(redis_url)
    try:
        async with hearing.listening():
            await eventually(lambda: hearing.subscriptions == 1)
            await store.keys.revoke(record.id)  # announced to nobody
            assert await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
            await eventually(lambda: hearing.subscriptions == 2)
            assert await refused(there, plaintext) == verifier_module.REVOKED
    finally:
        await admin.aclose()


async def test_an_announcement_redis_cannot_take_is_logged_and_the_change_still_applies(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    record, plaintext = await store.keys.create("unannounced")
    here = KeyVerifier(store)
    await here.verify(plaintext)
    await store.keys.revoke(record.id)
    changes = KeyChanges(here, key_changes.connect(f"redis://127.0.0.1:{free_port()}/0"))

    with caplog.at_level(logging.WARNING, logger="modelway.gateway"):
        await changes.changed(record.id)  # no error reaches the admin who revoked it
    await changes.aclose()

    assert await refused(here, plaintext) == verifier_module.REVOKED
    assert "could not announce a key change through Redis" in caplog.text


async def test_the_gateway_announces_a_key_revoked_or_edited_through_its_admin_api(
    tmp_path: Path, redis_url: str
) -> None:
    listener = Redis.from_url(redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    config = f"redis:\n  url: {redis_url}\n"
    async with in_process_gateway(tmp_path, config) as gateway:
        created = (await gateway.http.post("/admin/api/keys", json={"name": "k"})).json()
        key_id = created["id"]
        assert (await gateway.http.patch(f"/admin/api/keys/{key_id}", json={"rpm": 5})).is_success
        assert (await gateway.http.delete(f"/admin/api/keys/{key_id}")).is_success
        heard: list[bytes] = []
        async with asyncio.timeout(30):
            while len(heard) < 2:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    heard.append(message["data"])
    assert heard == [key_id.encode(), key_id.encode()]
    await pubsub.aclose()
    await listener.aclose()


async def test_the_cli_revoking_on_the_store_announces_it_when_the_config_names_a_redis(
    tmp_path: Path, redis_url: str
) -> None:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "REDIS_URL": redis_url}
    store = await Store.open(database_url(environ))
    record, _ = await store.keys.create("cli")
    await store.aclose()
    listener = Redis.from_url(redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)

    async with open_admin(None, None, environ) as admin:  # `modelway keys revoke`, no --url
        await admin.revoke_key(record.id)

    message = await eventually(lambda: pubsub.get_message(timeout=1.0))
    assert message["data"] == record.id.encode()
    await pubsub.aclose()
    await listener.aclose()


class FreezingProxy:
    """A TCP relay to Redis; ``freeze`` stops it passing bytes on the connections open at
    the time, which stay open (a half-open link: a dropped NAT entry, a vanished host)."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._frozen: set[asyncio.StreamWriter] = set()
        self._open: set[asyncio.StreamWriter] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._relays: list[asyncio.Task[object]] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    def freeze(self) -> None:
        self._frozen |= self._open

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self._target_port
        )
        self._open.add(writer)
        self._writers += [writer, upstream_writer]

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                if writer not in self._frozen:
                    sink.write(data)

        relay = asyncio.gather(
            pump(reader, upstream_writer), pump(upstream_reader, writer), return_exceptions=True
        )
        self._relays.append(relay)
        await relay

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await asyncio.gather(*self._relays, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


async def test_a_subscription_gone_silent_is_noticed_and_every_key_read_again(
    store: Store, redis_url: str
) -> None:
    record, plaintext = await store.keys.create("half-open")
    there = KeyVerifier(store)
    await there.verify(plaintext)
    proxy = FreezingProxy(int(redis_url.rsplit(":", 1)[1].split("/")[0]))
    hearing = KeyChanges(
        there, key_changes.connect(await proxy.start()), retry_seconds=0.05, ping_seconds=0.2
    )
    announcing = KeyChanges(None, key_changes.connect(redis_url))
    try:
        async with hearing.listening():
            await eventually(lambda: hearing.subscriptions == 1)
            proxy.freeze()  # no error, no reset: only silence
            await store.keys.revoke(record.id)
            await announcing.changed(record.id)  # goes by unheard
            await eventually(lambda: hearing.subscriptions == 2)
            assert hearing.heard == 0
            assert await refused(there, plaintext) == verifier_module.REVOKED
    finally:
        await announcing.aclose()
        await proxy.aclose()


async def test_many_keys_changed_at_once_are_each_heard(store: Store, redis_url: str) -> None:
    # An account's keys, revoked with it: one announcement each, in one round trip.
    records = [(await store.keys.create(f"k{n}"))[0] for n in range(5)]
    there = KeyVerifier(store)
    hearing = KeyChanges(there, key_changes.connect(redis_url))
    announcing = KeyChanges(None, key_changes.connect(redis_url))
    async with hearing.listening():
        await eventually(lambda: hearing.subscriptions == 1)
        await announcing.changed(*(record.id for record in records))
        await eventually(lambda: hearing.heard == len(records))
    await announcing.aclose()
