"""Checking a presented key: Argon2 once per key per process, revocation seen within 5 s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from modelway.errors import AuthenticationError
from modelway.store import KeyVerifier, Store, database_url
from modelway.store import verifier as verifier_module
from modelway.store.tables import api_keys
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)


class Clock:
    """Stands in for ``time`` in the verifier so a test can move time forward."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(verifier_module, "time", clock)
    return clock


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every Argon2 verification the verifier runs (the hash checked against)."""
    runs: list[str] = []
    real = verifier_module.secret_matches

    async def counting(secret_hash: str, secret: str) -> bool:
        runs.append(secret_hash)
        return await real(secret_hash, secret)

    monkeypatch.setattr(verifier_module, "secret_matches", counting)
    yield runs


async def test_a_valid_key_verifies_to_its_record(store: Store) -> None:
    record, plaintext = await store.keys.create("ci")
    assert await KeyVerifier(store).verify(plaintext) == record


async def test_argon2_runs_once_per_key_per_process(
    store: Store, clock: Clock, argon2_runs: list[str]
) -> None:
    _, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    for _ in range(5):
        await verifier.verify(plaintext)
        clock.advance(10)  # past the refresh: a re-read by id, still no Argon2
    assert len(argon2_runs) == 1


async def test_concurrent_checks_of_one_key_share_one_argon2_run(
    store: Store, argon2_runs: list[str]
) -> None:
    record, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    results = await asyncio.gather(*(verifier.verify(plaintext) for _ in range(20)))
    assert results == [record] * 20
    assert len(argon2_runs) == 1


async def test_a_wrong_key_is_refused_without_echoing_it(store: Store) -> None:
    record, plaintext = await store.keys.create("ci")
    wrong = plaintext[:-4] + ("AAAA" if not plaintext.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthenticationError) as refused:
        await KeyVerifier(store).verify(wrong)
    assert refused.value.message == "invalid API key"
    assert wrong not in str(refused.value) and record.prefix not in str(refused.value)


@pytest.mark.parametrize("presented", ["", "sk-not-ours", "mw-short", "mw-" + "x" * 40])
async def test_unknown_keys_are_refused(store: Store, presented: str) -> None:
    with pytest.raises(AuthenticationError, match="invalid API key"):
        await KeyVerifier(store).verify(presented)


async def test_a_flood_of_one_wrong_key_runs_argon2_once(
    store: Store, argon2_runs: list[str]
) -> None:
    _, plaintext = await store.keys.create("ci")
    wrong = plaintext[:11] + "x" * (len(plaintext) - 11)  # right prefix: a real candidate
    verifier = KeyVerifier(store)
    for _ in range(10):
        with pytest.raises(AuthenticationError):
            await verifier.verify(wrong)
    assert len(argon2_runs) == 1


async def test_an_expired_key_is_refused_as_expired(store: Store, clock: Clock) -> None:
    _, plaintext = await store.keys.create("ci", expires_at=clock.now + 60)
    verifier = KeyVerifier(store)
    await verifier.verify(plaintext)
    clock.advance(61)
    with pytest.raises(AuthenticationError, match="expired"):
        await verifier.verify(plaintext)


async def test_a_revoked_key_is_refused_as_revoked(store: Store) -> None:
    record, plaintext = await store.keys.create("ci")
    await store.keys.revoke(record.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await KeyVerifier(store).verify(plaintext)


async def test_a_revocation_elsewhere_is_seen_after_the_refresh_interval(
    store: Store, clock: Clock
) -> None:
    record, plaintext = await store.keys.create("ci")
    replica = KeyVerifier(store)
    await replica.verify(plaintext)
    await store.keys.revoke(record.id)  # another replica (or the CLI) revokes it
    clock.advance(verifier_module.REFRESH_AFTER - 0.5)
    await replica.verify(plaintext)  # still trusted within the interval
    clock.advance(1)
    assert verifier_module.REFRESH_AFTER + 0.5 < 5  # the promise: revoked within 5 seconds
    with pytest.raises(AuthenticationError, match="revoked"):
        await replica.verify(plaintext)


async def test_expiring_a_key_applies_a_local_revocation_at_once_without_argon2(
    store: Store, clock: Clock, argon2_runs: list[str]
) -> None:
    record, plaintext = await store.keys.create("ci")
    other, other_plaintext = await store.keys.create("other")
    verifier = KeyVerifier(store)
    await verifier.verify(plaintext)
    await verifier.verify(other_plaintext)
    await store.keys.revoke(record.id)
    await store.keys.revoke(other.id)
    verifier.expire(record.id)  # the clock stands still: only this makes it re-read
    with pytest.raises(AuthenticationError, match="revoked"):
        await verifier.verify(plaintext)
    assert await verifier.verify(other_plaintext) == other  # not told: trusted until re-read
    verifier.expire_all()
    with pytest.raises(AuthenticationError, match="revoked"):
        await verifier.verify(other_plaintext)
    assert len(argon2_runs) == 2  # the first checks only: each change was a re-read by id


async def test_a_cached_key_keeps_working_while_the_store_is_briefly_down(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    await verifier.verify(plaintext)

    async def unreachable(key_id: str) -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(store.keys, "get", unreachable)
    clock.advance(10)
    assert await verifier.verify(plaintext) == record


async def test_a_key_told_to_expire_is_not_served_from_memory_while_the_store_is_down(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It changed, maybe revoked: unlike a key that only aged, it waits for its row.
    record, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    await verifier.verify(plaintext)
    await store.keys.revoke(record.id)
    verifier.expire(record.id)
    read = store.keys.get

    async def unreachable(key_id: str) -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(store.keys, "get", unreachable)
    for _ in range(2):  # every use while it is down, not only the first
        with pytest.raises(ConnectionRefusedError):
            await verifier.verify(plaintext)
    monkeypatch.setattr(store.keys, "get", read)
    with pytest.raises(AuthenticationError, match="revoked"):
        await verifier.verify(plaintext)


async def test_keys_read_again_after_missed_announcements_are_served_while_the_store_is_down(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Missing announcements says nothing about this key: it is re-read, and kept when the
    # store cannot be read, as a key that only aged is (a Redis and then a database
    # restart must not refuse every key).
    record, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    await verifier.verify(plaintext)
    verifier.expire_all()

    async def unreachable(key_id: str) -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(store.keys, "get", unreachable)
    assert await verifier.verify(plaintext) == record


@pytest.mark.parametrize("first_check", [False, True])
async def test_a_change_told_while_the_key_is_being_checked_is_not_lost(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch, first_check: bool
) -> None:
    # The check read the row before the revocation and ends after it was told of it: what
    # it read is used once, then read again.
    record, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    if not first_check:
        await verifier.verify(plaintext)
        clock.advance(10)  # due for a re-read
    reading, go_on = asyncio.Event(), asyncio.Event()
    read = store.keys.get if not first_check else store.keys.find_candidates
    name = "get" if not first_check else "find_candidates"

    async def slow(argument: str) -> object:
        answer = await read(argument)
        reading.set()
        await go_on.wait()
        return answer

    monkeypatch.setattr(store.keys, name, slow)
    checking = asyncio.create_task(verifier.verify(plaintext))
    await reading.wait()
    await store.keys.revoke(record.id)
    verifier.expire(record.id)
    go_on.set()
    assert (await checking).id == record.id  # it began before the revocation
    monkeypatch.setattr(store.keys, name, read)
    with pytest.raises(AuthenticationError, match="revoked"):
        await verifier.verify(plaintext)


@pytest.mark.parametrize("first_check", [False, True])
async def test_another_keys_change_told_during_a_check_leaves_this_key_served(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch, first_check: bool
) -> None:
    # Only the key told of waits for its row: a change to another key while this one was
    # being checked must not make this one refused (503) the next time the store is down.
    record, plaintext = await store.keys.create("ci")
    other, _ = await store.keys.create("other")
    verifier = KeyVerifier(store)
    if not first_check:
        await verifier.verify(plaintext)
        clock.advance(10)  # due for a re-read
    reading, go_on = asyncio.Event(), asyncio.Event()
    name = "get" if not first_check else "find_candidates"
    read = getattr(store.keys, name)

    async def slow(argument: str) -> object:
        answer = await read(argument)
        reading.set()
        await go_on.wait()
        return answer

    monkeypatch.setattr(store.keys, name, slow)
    checking = asyncio.create_task(verifier.verify(plaintext))
    await reading.wait()
    verifier.expire(other.id)
    go_on.set()
    assert (await checking).id == record.id

    async def unreachable(key_id: str) -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(store.keys, "get", unreachable)
    clock.advance(10)  # due for a re-read, which fails: a key that only aged is kept
    assert await verifier.verify(plaintext) == record


def test_a_check_told_of_more_keys_than_it_keeps_counts_as_told_of_every_key() -> None:
    told = verifier_module._Told()
    for n in range(verifier_module.MAX_TOLD + 1):
        told.add(f"key-{n}")
    assert told.of("never-told")
    fresh = verifier_module._Told()
    fresh.add("key-1")
    assert fresh.of("key-1") and not fresh.of("key-2")


async def test_a_key_pushed_out_of_a_full_table_is_forgotten_by_id_too(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ``expire`` finds a key by its id without walking the table; that index stays as
    # bounded as the table, and a key verified again is found through it again.
    monkeypatch.setattr(verifier_module, "MAX_ENTRIES", 2)
    made = [await store.keys.create(f"k{n}") for n in range(3)]
    verifier = KeyVerifier(store)
    for _, plaintext in made:
        await verifier.verify(plaintext)
    assert len(verifier._digests) == len(verifier._verified) == 2
    (first, first_plaintext), (last, last_plaintext) = made[0], made[-1]
    verifier.expire(first.id)  # no longer remembered: nothing to expire
    await store.keys.revoke(last.id)
    verifier.expire(last.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await verifier.verify(last_plaintext)
    assert len(verifier._digests) == len(verifier._verified) == 1
    assert (await verifier.verify(first_plaintext)).id == first.id  # Argon2 again
    await store.keys.revoke(first.id)
    verifier.expire(first.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        await verifier.verify(first_plaintext)


async def test_settings_changed_in_the_store_reach_the_cache_on_refresh(
    store: Store, clock: Clock
) -> None:
    record, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    assert (await verifier.verify(plaintext)).expires_at is None
    async with store.engine.begin() as connection:
        await connection.execute(api_keys.update().where(api_keys.c.id == record.id).values(rpm=5))
    clock.advance(10)
    assert (await verifier.verify(plaintext)).rpm == 5
