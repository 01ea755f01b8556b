"""Wrong keys cannot buy Argon2 runs without limit, evict verified keys, or lock an owner out.

Failed checks are limited per client address and per (key prefix, address), on an
injected clock; at most ``concurrent`` Argon2 runs happen at once with ``waiting`` more
queued; verified keys live apart from refusals. Over HTTP: 429 with ``Retry-After`` in
the path's dialect, and a key header sent twice is refused on every route.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from modelway.config import KeyChecks, parse_config
from modelway.errors import AuthenticationError, RateLimited, ServerBusy
from modelway.gateway.app import Gateway, create_app
from modelway.gateway.auth import Authenticator
from modelway.gateway.key_attempts import client_scope
from modelway.secrets import Secret
from modelway.store import KeyVerifier, Store, argon2id, database_url
from modelway.store import verifier as verifier_module
from modelway.store.records import KeyRecord
from tests.polling import eventually
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

MASTER = "mw-master-key-for-the-guessing-tests-01"
ATTACKER = "203.0.113.7"
OWNER = "198.51.100.20"


class Clock:
    """A monotonic clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def wrong_key(real: str, n: int) -> str:
    """A wrong key with ``real``'s lookup prefix (``mw-`` and 8 characters)."""
    return real[:11] + f"{n:040d}"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every Argon2 verification the verifier runs (the hash checked against)."""
    runs: list[str] = []
    real = argon2id.secret_matches

    async def counting(secret_hash: str, secret: str) -> bool:
        runs.append(secret_hash)
        return await real(secret_hash, secret)

    monkeypatch.setattr(verifier_module, "secret_matches", counting)
    yield runs


class Gate:
    """Stands in for Argon2: each run waits until the test opens the gate."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.running = 0
        self.most_at_once = 0
        self.order: list[str] = []  # the keys checked, in the order their runs began

    async def __call__(self, secret_hash: str, secret: str) -> bool:
        self.order.append(secret)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.opened.wait()
        finally:
            self.running -= 1
        return False


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate()
    monkeypatch.setattr(verifier_module, "secret_matches", gate)
    return gate


# --- the verifier: caches apart, Argon2 bounded ----------------------------------------------


async def test_wrong_keys_cannot_push_a_verified_key_out_of_the_cache(
    store: Store, argon2_runs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    record, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    await verifier.verify(plaintext)
    real_find = store.keys.find_candidates

    async def no_rows(prefix: str) -> list[object]:
        return []  # unknown prefixes: what 10,500 random keys find, without the SELECTs

    monkeypatch.setattr(store.keys, "find_candidates", no_rows)
    for n in range(verifier_module.MAX_ENTRIES + 1):
        with pytest.raises(AuthenticationError):
            await verifier.verify(f"mw-{n:040d}")
    monkeypatch.setattr(store.keys, "find_candidates", real_find)
    assert await verifier.verify(plaintext) == record
    assert len(argon2_runs) == 1  # still remembered: not checked again


async def test_refusals_are_remembered_within_a_bound_of_their_own(
    store: Store, argon2_runs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verifier_module, "MAX_REFUSALS", 3)
    _, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store)
    for n in range(4):
        with pytest.raises(AuthenticationError):
            await verifier.verify(wrong_key(plaintext, n))
    assert len(argon2_runs) == 4
    with pytest.raises(AuthenticationError):
        await verifier.verify(wrong_key(plaintext, 3))  # the newest refusal: remembered
    assert len(argon2_runs) == 4
    with pytest.raises(AuthenticationError):
        await verifier.verify(wrong_key(plaintext, 0))  # the oldest went: checked again
    assert len(argon2_runs) == 5


async def test_no_more_argon2_runs_than_configured_happen_at_once(store: Store, gate: Gate) -> None:
    _, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store, concurrent=2, waiting=10)
    checks = [asyncio.create_task(verifier.verify(wrong_key(plaintext, n))) for n in range(6)]
    await eventually(lambda: verifier.checks_waiting == 4, what="four checks queued")
    assert gate.running == 2
    gate.opened.set()
    results = await asyncio.gather(*checks, return_exceptions=True)
    assert all(isinstance(result, AuthenticationError) for result in results)
    assert gate.most_at_once == 2


async def test_a_check_beyond_the_queue_is_refused_busy_at_once(store: Store, gate: Gate) -> None:
    _, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store, concurrent=1, waiting=2)
    checks = [asyncio.create_task(verifier.verify(wrong_key(plaintext, n))) for n in range(3)]
    await eventually(lambda: verifier.checks_waiting == 2, what="two checks queued")
    with pytest.raises(ServerBusy) as busy:
        await verifier.verify(wrong_key(plaintext, 99))
    assert (busy.value.status, busy.value.retry_after) == (503, 1.0)
    gate.opened.set()
    await asyncio.gather(*checks, return_exceptions=True)
    assert gate.most_at_once == 1


async def test_a_check_from_a_clean_address_goes_before_suspected_ones(
    store: Store, gate: Gate
) -> None:
    _, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store, concurrent=1, waiting=10)
    suspected = [wrong_key(plaintext, n) for n in range(4)]
    checks = [asyncio.create_task(verifier.check(key, True)) for key in suspected]
    await eventually(lambda: verifier.checks_waiting == 3, what="three suspects in line")
    clean = asyncio.create_task(verifier.check(wrong_key(plaintext, 99), False))
    await eventually(lambda: verifier.checks_waiting == 4, what="the clean check in line")
    gate.opened.set()
    await asyncio.gather(*checks, clean, return_exceptions=True)
    # The first suspect was running; the clean check came last and went next.
    assert gate.order[1] == wrong_key(plaintext, 99)
    assert sorted(gate.order[:1] + gate.order[2:]) == suspected


async def test_a_full_line_sends_a_suspect_away_to_make_room_for_a_clean_check(
    store: Store, gate: Gate
) -> None:
    _, plaintext = await store.keys.create("ci")
    verifier = KeyVerifier(store, concurrent=1, waiting=2)
    checks = [asyncio.create_task(verifier.check(wrong_key(plaintext, n), True)) for n in range(3)]
    await eventually(lambda: verifier.checks_waiting == 2, what="two suspects in line")
    with pytest.raises(ServerBusy):  # another suspect: no room
        await verifier.check(wrong_key(plaintext, 50), True)
    clean = asyncio.create_task(verifier.check(wrong_key(plaintext, 99), False))
    await eventually(lambda: any(check.done() for check in checks), what="a suspect sent away")
    gate.opened.set()
    with pytest.raises(AuthenticationError):  # checked (and wrong), not turned away
        await clean
    results = await asyncio.gather(*checks, return_exceptions=True)
    assert sum(isinstance(result, ServerBusy) for result in results) == 1


# --- failed checks, per address and per prefix ------------------------------------------------


def authenticator(store: Store, clock: Clock, **limits: int) -> Authenticator:
    return Authenticator(store, Secret(MASTER), KeyChecks(**limits), clock=clock)


async def test_wrong_keys_with_a_real_prefix_are_limited_per_address(
    store: Store, argon2_runs: list[str]
) -> None:
    _, plaintext = await store.keys.create("ci")
    auth = authenticator(store, Clock(), failures_per_prefix=3, failures_per_address=100)
    for n in range(3):
        with pytest.raises(AuthenticationError):
            await auth.caller(wrong_key(plaintext, n), ATTACKER)
    with pytest.raises(RateLimited) as limited:
        await auth.caller(wrong_key(plaintext, 3), ATTACKER)
    assert limited.value.status == 429
    assert limited.value.retry_after is not None and 0 < limited.value.retry_after <= 61
    assert plaintext[3:11] not in limited.value.message  # the prefix is not echoed
    assert len(argon2_runs) == 3  # the refused one cost nothing


async def test_failures_leave_the_window_as_the_clock_moves(store: Store) -> None:
    _, plaintext = await store.keys.create("ci")
    clock = Clock()
    auth = authenticator(store, clock, failures_per_prefix=2, window=60)
    for n in range(2):
        with pytest.raises(AuthenticationError):
            await auth.caller(wrong_key(plaintext, n), ATTACKER)
    with pytest.raises(RateLimited) as limited:
        await auth.caller(wrong_key(plaintext, 2), ATTACKER)
    assert limited.value.retry_after is not None
    clock.now += limited.value.retry_after
    with pytest.raises(AuthenticationError):  # checked again, and wrong
        await auth.caller(wrong_key(plaintext, 3), ATTACKER)


async def test_failures_from_one_address_are_limited_whatever_the_keys(store: Store) -> None:
    auth = authenticator(store, Clock(), failures_per_address=3)
    for key in ("sk-not-ours", "mw-" + "a" * 40, "mw-" + "b" * 40):
        with pytest.raises(AuthenticationError):
            await auth.caller(key, ATTACKER)
    with pytest.raises(RateLimited):
        await auth.caller("mw-" + "c" * 40, ATTACKER)
    with pytest.raises(AuthenticationError):  # another address: not limited
        await auth.caller("mw-" + "c" * 40, OWNER)


async def test_a_verified_key_is_never_limited_not_even_from_the_attackers_address(
    store: Store, argon2_runs: list[str]
) -> None:
    record, plaintext = await store.keys.create("ci")
    auth = authenticator(store, Clock(), failures_per_prefix=2, failures_per_address=2)
    assert (await auth.caller(plaintext, ATTACKER)).key_id == record.id
    for n in range(2):
        with pytest.raises(AuthenticationError):
            await auth.caller(wrong_key(plaintext, n), ATTACKER)
    with pytest.raises(RateLimited):
        await auth.caller(wrong_key(plaintext, 2), ATTACKER)
    for client in (ATTACKER, OWNER):
        assert (await auth.caller(plaintext, client)).key_id == record.id
    assert len(argon2_runs) == 3  # the key's own check and two wrong ones


async def test_an_owner_presenting_their_key_first_is_verified_while_its_prefix_is_limited(
    store: Store,
) -> None:
    record, plaintext = await store.keys.create("ci")
    auth = authenticator(store, Clock(), failures_per_prefix=2)
    for n in range(2):
        with pytest.raises(AuthenticationError):
            await auth.caller(wrong_key(plaintext, n), ATTACKER)
    with pytest.raises(RateLimited):
        await auth.caller(wrong_key(plaintext, 2), ATTACKER)
    assert (await auth.caller(plaintext, OWNER)).key_id == record.id


async def test_a_burst_on_a_new_key_is_one_check_and_never_a_429(
    store: Store, argon2_runs: list[str]
) -> None:
    # A client's first 32 calls at once on a new key (the bench's wrk did this): more
    # copies in flight than failures_per_prefix must not count as 32 pending failures.
    record, plaintext = await store.keys.create("ci")
    auth = authenticator(store, Clock(), failures_per_prefix=3, failures_per_address=3)
    callers = await asyncio.gather(*(auth.caller(plaintext, OWNER) for _ in range(32)))
    assert {caller.key_id for caller in callers} == {record.id}
    assert len(argon2_runs) == 1


async def test_a_check_that_passes_is_not_counted_as_a_failure(store: Store) -> None:
    _, plaintext = await store.keys.create("ci")
    auth = authenticator(store, Clock(), failures_per_prefix=1, failures_per_address=1)
    await auth.caller(plaintext, OWNER)
    with pytest.raises(AuthenticationError):  # the one failure allowed, not a 429
        await auth.caller(wrong_key(plaintext, 0), OWNER)


async def test_checks_after_failures_from_their_address_or_on_their_prefix_are_suspect(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    owned, plaintext = await store.keys.create("ci")
    _, other = await store.keys.create("other")
    auth = authenticator(store, Clock())
    suspects: list[bool] = []
    real_check = auth.verifier.check

    async def recording(key: str, suspect: bool = False) -> KeyRecord:
        suspects.append(suspect)
        return await real_check(key, suspect)

    monkeypatch.setattr(auth.verifier, "check", recording)
    for n in range(2):
        with pytest.raises(AuthenticationError):
            await auth.caller(wrong_key(plaintext, n), ATTACKER)
    await auth.caller(other, OWNER)  # a clean address, a clean prefix
    assert (await auth.caller(plaintext, OWNER)).key_id == owned.id  # suspect, still served
    assert suspects == [False, True, False, True]


def test_failures_are_counted_per_ip_address_and_per_ipv6_slash_64() -> None:
    assert client_scope("192.0.2.1") == "192.0.2.1"
    assert client_scope("[2001:db8:1:2::1]") == client_scope("2001:db8:1:2:ffff::9")
    assert client_scope("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_scope("2001:db8:1:3::1") != client_scope("2001:db8:1:2::1")
    assert client_scope("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_scope(None) == "unknown"


# --- over HTTP (ASGI): 429 in the path's dialect, one key header each -------------------------


@pytest.fixture
async def app_and_key(tmp_path: Path) -> AsyncIterator[tuple[Gateway, str]]:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "MODELWAY_MASTER_KEY": MASTER}
    config = parse_config("server:\n  key_checks: {failures_per_prefix: 2}\n", environ)
    app = create_app(config, environ)
    async with app.lifespan():
        _, plaintext = await app.state.gateway.store.keys.create("ci")
        yield app, plaintext


def client(app: Gateway, address: str = ATTACKER) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def limited(
    http: httpx.AsyncClient, method: str, path: str, real: str, first: int = 0
) -> httpx.Response:
    """The answer once wrong keys with ``real``'s prefix have used up the allowance.

    Each key is new: a wrong key presented again is refused from memory, uncounted.
    """
    for n in range(first, first + 3):
        headers = {"x-api-key": wrong_key(real, n)}
        response = await http.request(method, path, headers=headers, json={"model": "mock/echo"})
        if response.status_code != 401:
            return response
    return response


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("POST", "/v1/responses")],
)
async def test_limited_checks_are_answered_429_with_retry_after_in_openai_shape(
    app_and_key: tuple[Gateway, str], method: str, path: str
) -> None:
    app, plaintext = app_and_key
    async with client(app) as http:
        response = await limited(http, method, path, plaintext)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 61
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "too_many_failed_keys")


async def test_limited_checks_are_answered_in_anthropic_and_ollama_shapes(
    app_and_key: tuple[Gateway, str],
) -> None:
    app, plaintext = app_and_key
    async with client(app) as http:
        anthropic = await limited(http, "POST", "/v1/messages", plaintext)
    async with client(app, "192.0.2.99") as http:
        ollama = await limited(http, "GET", "/api/tags", plaintext, first=10)
    assert anthropic.status_code == ollama.status_code == 429
    assert "retry-after" in anthropic.headers and "retry-after" in ollama.headers
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "rate_limit_error"
    assert "too many failed" in ollama.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [
        [("authorization", "Bearer wrong"), ("authorization", f"Bearer {MASTER}")],
        [("authorization", f"Bearer {MASTER}"), ("authorization", "Bearer wrong")],
        [("x-api-key", "wrong"), ("x-api-key", MASTER)],
        [("x-api-key", MASTER), ("x-api-key", MASTER)],
    ],
)
@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/models"), ("GET", "/admin/api/keys")])
async def test_a_starlette_route_refuses_a_key_header_sent_twice(
    app_and_key: tuple[Gateway, str], headers: list[tuple[str, str]], method: str, path: str
) -> None:
    app, _ = app_and_key
    async with client(app) as http:
        response = await http.request(method, path, headers=headers)
    assert response.status_code == 401
    assert "more than one" in response.json()["error"]["message"]


async def test_the_asgi_chat_path_refuses_a_key_header_sent_twice_in_its_dialect(
    app_and_key: tuple[Gateway, str],
) -> None:
    app, _ = app_and_key
    body = {"model": "mock/echo", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    headers = [("x-api-key", MASTER), ("x-api-key", "wrong")]
    async with client(app) as http:
        response = await http.post("/v1/messages", json=body, headers=headers)
        alone = await http.post("/v1/messages", json=body, headers=headers[:1])
    assert response.status_code == 401
    assert response.json()["type"] == "error"
    assert "more than one x-api-key header" in response.json()["error"]["message"]
    assert alone.status_code == 200
