"""The admin dashboard's store: sessions, teams and members, admin accounts, key edits
and the key search with each key's spend this budget period.

tests/integration/test_store_postgres.py runs these same tests against PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from modelway.errors import BadRequest, NotFound
from modelway.limits.budgets import period_starts
from modelway.store import Store, UsageRecord, database_url
from modelway.store.admin_sessions import token_hash
from modelway.store.tables import admin_sessions
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

NOW = 1_900_000_000.0
HOUR = 3600.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


# --- sessions ----------------------------------------------------------------------------


async def test_a_session_is_found_by_its_cookie_value_until_it_expires(store: Store) -> None:
    token, session = await store.admin_sessions.open("master", now=NOW, ttl=HOUR)
    assert session.expires_at == NOW + HOUR and len(session.csrf) >= 40
    assert await store.admin_sessions.find(token, now=NOW + HOUR - 1) == session
    assert await store.admin_sessions.find(token, now=NOW + HOUR) is None
    assert await store.admin_sessions.find(token + "x", now=NOW) is None


async def test_only_a_hash_of_the_cookie_value_is_stored(store: Store) -> None:
    token, _ = await store.admin_sessions.open("master", now=NOW, ttl=HOUR)
    async with store.engine.connect() as connection:
        row = (await connection.execute(select(admin_sessions))).one()
    assert row.token_hash == token_hash(token) and token not in " ".join(map(str, row))


async def test_a_master_session_ends_when_the_master_key_changes(store: Store) -> None:
    master = "sk-master-one-" + "x" * 20
    token, session = await store.admin_sessions.open("master", now=NOW, ttl=HOUR, secret=master)
    assert await store.admin_sessions.find(token, now=NOW, secret=master) == session
    assert await store.admin_sessions.find(token, now=NOW, secret=master + "2") is None
    assert await store.admin_sessions.find(token, now=NOW) is None  # no master key any more
    async with store.engine.connect() as connection:
        row = (await connection.execute(select(admin_sessions))).one()
    assert master not in " ".join(map(str, row))  # an HMAC under the cookie value, not the key


async def test_a_closed_session_is_gone_and_expired_ones_are_swept(store: Store) -> None:
    old, _ = await store.admin_sessions.open("master", now=NOW, ttl=HOUR)
    token, _ = await store.admin_sessions.open("master", now=NOW + 2 * HOUR, ttl=HOUR)
    await store.admin_sessions.close(token)
    assert await store.admin_sessions.find(token, now=NOW + 2 * HOUR) is None
    async with store.engine.connect() as connection:
        assert (await connection.execute(select(admin_sessions))).all() == []
    assert old  # swept when the second one opened


async def test_a_user_session_ends_when_the_account_is_no_longer_an_admin(store: Store) -> None:
    user = await store.users.register("ada@example.com", "correct horse", is_admin=True)
    token, session = await store.admin_sessions.open(
        "user", now=NOW, ttl=HOUR, user_id=user.id, email=user.email
    )
    assert (await store.admin_sessions.find(token, now=NOW)) == session
    assert session.email == "ada@example.com"
    await store.users.update(user.id, is_admin=False)
    assert await store.admin_sessions.find(token, now=NOW) is None


async def test_deleting_an_account_ends_its_sessions(store: Store) -> None:
    user = await store.users.register("ada@example.com", "correct horse", is_admin=True)
    token, _ = await store.admin_sessions.open("user", now=NOW, ttl=HOUR, user_id=user.id)
    assert await store.users.delete(user.id) == []
    assert await store.admin_sessions.find(token, now=NOW) is None
    assert await store.users.delete(user.id) is None


async def test_deleting_an_account_revokes_the_keys_it_owns_and_no_others(store: Store) -> None:
    user = await store.users.register("bob@example.com", "correct horse")
    own, _ = await store.keys.create("laptop", owner_user="bob@example.com")
    labelled, _ = await store.keys.create("ci", owner_user="Bob@Example.com")
    already, _ = await store.keys.create("old", owner_user="bob@example.com")
    await store.keys.revoke(already.id)
    other, _ = await store.keys.create("theirs", owner_user="ann@example.com")
    unowned, _ = await store.keys.create("shared")
    assert sorted(await store.users.delete(user.id) or []) == sorted([own.id, labelled.id])
    for key in (own, labelled):
        record = await store.keys.get(key.id)
        assert record is not None and record.revoked and record.owner_user == key.owner_user
    for key in (other, unowned):
        record = await store.keys.get(key.id)
        assert record is not None and not record.revoked
    again = await store.users.register("bob@example.com", "another horse")
    assert await store.users.delete(again.id) == []  # the old keys stay revoked, not its own


async def test_an_account_with_a_non_ascii_email_revokes_keys_labelled_in_any_case(
    store: Store,
) -> None:
    # SQLite's lower() folds ASCII only: Ä and ä must still be the same owner.
    user = await store.users.register("jöran@exämple.com", "correct horse")
    labelled, _ = await store.keys.create("ci", owner_user="JÖRAN@EXÄMPLE.COM")
    other, _ = await store.keys.create("theirs", owner_user="joran@example.com")
    assert await store.users.delete(user.id) == [labelled.id]
    record = await store.keys.get(other.id)
    assert record is not None and not record.revoked


async def test_a_key_made_for_an_account_needs_the_account_to_exist(store: Store) -> None:
    user = await store.users.register("sue@example.com", "correct horse")
    made, _ = await store.keys.create("laptop", owner_user="sue@example.com", account=user.id)
    assert made.owner_user == "sue@example.com"
    await store.users.delete(user.id)
    with pytest.raises(NotFound):
        await store.keys.create("phone", owner_user="sue@example.com", account=user.id)
    assert [key.name for key in await store.keys.list()] == ["laptop"]


def test_a_session_repr_shows_no_token() -> None:
    from modelway.store import AdminSession

    session = AdminSession(
        csrf="secret-csrf", kind="master", user_id=None, email=None, created_at=0, expires_at=1
    )
    assert "secret-csrf" not in repr(session)


# --- accounts ----------------------------------------------------------------------------


async def test_accounts_are_listed_with_their_teams_and_admin_right(store: Store) -> None:
    ada = await store.users.register("ada@example.com", "correct horse", is_admin=True)
    bob = await store.users.register("bob@example.com", "correct horse")
    await store.teams.create("ml")
    await store.teams.create("ai")
    await store.teams.add_member("ml", ada.id)
    await store.teams.add_member("ai", ada.id)
    listed = {
        user.email: (user.is_admin, teams) for user, teams in await store.users.list_with_teams()
    }
    assert listed == {"ada@example.com": (True, ["ai", "ml"]), "bob@example.com": (False, [])}
    assert (await store.users.authenticate("ada@example.com", "correct horse")).is_admin
    assert await store.users.find("BOB@example.com ") == bob


async def test_a_new_password_replaces_the_old_one(store: Store) -> None:
    ada = await store.users.register("ada@example.com", "correct horse")
    assert await store.users.update(ada.id, password="battery staple")
    assert await store.users.authenticate("ada@example.com", "battery staple")
    with pytest.raises(BadRequest, match="characters"):
        await store.users.update(ada.id, password="short")
    assert not await store.users.update("no-such-id", is_admin=True)


# --- teams -------------------------------------------------------------------------------


async def test_a_team_keeps_its_budget_members_and_metadata(store: Store) -> None:
    ada = await store.users.register("ada@example.com", "correct horse")
    created = await store.teams.create(
        "ml", budget_usd=10.0, budget_period="day", metadata={"a": 1}
    )
    await store.teams.add_member("ml", ada.id)
    await store.teams.add_member("ml", ada.id)  # again: harmless
    team = await store.teams.get("ml")
    assert team is not None and team.budget_usd == 10.0 and team.metadata == {"a": 1}
    assert [member.email for member in team.members] == ["ada@example.com"]
    assert created.name == "ml"
    assert await store.teams.budgets() == [("ml", 10.0, "day")]

    assert await store.teams.update("ml", {"budget_usd": None})
    assert await store.teams.budgets() == []
    assert await store.teams.remove_member("ml", ada.id)
    assert not await store.teams.remove_member("ml", ada.id)
    assert await store.teams.delete("ml") and await store.teams.get("ml") is None
    assert not await store.teams.update("ml", {"budget_usd": 1.0})


async def test_a_team_name_is_taken_once(store: Store) -> None:
    await store.teams.create("ml")
    with pytest.raises(BadRequest, match="already exists"):
        await store.teams.create("ml")


@pytest.mark.parametrize(
    "name",
    ["a/b", "/", ".", "..", "\x00", "ml\nforged line", "tab\there", "\x9b", "t" * 201, " ml", ""],
)
async def test_a_team_name_is_one_printable_path_segment(store: Store, name: str) -> None:
    # A team is read, changed and deleted at /admin/api/teams/{name}: a '/' (decoded before
    # routing) or a dot segment could never be reached again.
    with pytest.raises(BadRequest, match=r"^name: "):
        await store.teams.create(name)
    assert await store.teams.list() == []


async def test_a_keys_owner_team_follows_the_team_name_rule(store: Store) -> None:
    with pytest.raises(BadRequest, match=r"^owner_team: "):
        await store.keys.create("k", owner_team="a/b")
    record, _ = await store.keys.create("k", owner_team="ml.ops (EU) ü")
    with pytest.raises(BadRequest, match=r"^owner_team: "):
        await store.keys.update(record.id, {"owner_team": "ml\x00"})
    changed = await store.keys.update(record.id, {"owner_team": None})
    assert changed is not None and changed.owner_team is None


async def test_a_teams_figures_count_live_keys_and_this_periods_spend(store: Store) -> None:
    now = time.time()
    await store.teams.create("ml", budget_usd=5.0, budget_period="day")
    await store.keys.create("a", owner_team="ml")
    revoked, _ = await store.keys.create("b", owner_team="ml")
    await store.keys.revoke(revoked.id)
    await store.usage.insert_many(
        [
            UsageRecord(request_id="r1", time=now, team="ml", cost_usd=1.5),
            UsageRecord(request_id="r2", time=now - 3 * 86_400, team="ml", cost_usd=100.0),
            UsageRecord(request_id="r3", time=now, team="other", cost_usd=7.0),
        ]
    )
    figures = await store.teams.figures(period_starts(now))
    assert figures["ml"] == (1, 1.5)


# --- keys --------------------------------------------------------------------------------


async def test_a_key_edit_changes_only_what_it_names_and_null_clears(store: Store) -> None:
    record, _ = await store.keys.create("ci", rpm=10, budget_usd=5.0, models=["gpt-*"])
    changed = await store.keys.update(record.id, {"rpm": 1, "budget_usd": None, "models": []})
    assert changed is not None and changed.rpm == 1 and changed.budget_usd is None
    again = await store.keys.get(record.id)
    assert again == changed and again.models == () and again.name == "ci"
    assert await store.keys.update("no-such-key", {"rpm": 1}) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": " "}, "needs a name"),
        ({"rpm": -1}, "rpm"),
        ({"budget_usd": float("nan")}, "budget_usd"),
        ({"budget_period": "week"}, "budget period"),
        ({"expires_at": 1e300}, "expires_at"),
    ],
)
async def test_a_key_edit_is_checked_as_a_new_key_is(
    store: Store, changes: dict[str, object], message: str
) -> None:
    record, _ = await store.keys.create("ci")
    with pytest.raises(BadRequest, match=message):
        await store.keys.update(record.id, changes)
    assert await store.keys.get(record.id) == record


async def test_keys_are_searched_filtered_sorted_and_paged_with_their_spend(store: Store) -> None:
    now = time.time()
    starts = period_starts(now)
    alpha, _ = await store.keys.create("alpha", owner_team="Research", budget_period="day")
    beta, _ = await store.keys.create("beta 100%", owner_user="bob")
    gamma, _ = await store.keys.create("gamma", expires_at=now + 3600)
    await store.keys.revoke(gamma.id)
    await store.usage.insert_many(
        [
            UsageRecord(request_id="1", time=now, key_id=alpha.id, cost_usd=2.0),
            UsageRecord(request_id="2", time=now - 2 * 86_400, key_id=alpha.id, cost_usd=50.0),
            UsageRecord(request_id="3", time=now, key_id=beta.id, cost_usd=1.0),
        ]
    )

    async def names(**options: object) -> tuple[list[str], int]:
        options = {"now": now, "starts": starts, **options}
        page, total = await store.keys.search(**options)  # type: ignore[arg-type]
        return [record.name for record, _ in page], total

    assert await names(sort="name", descending=False) == (["alpha", "beta 100%", "gamma"], 3)
    assert await names(text="RESEARCH") == (["alpha"], 1)
    assert await names(text="100%") == (["beta 100%"], 1)  # % is a character, not a wildcard
    assert await names(text=alpha.prefix) == (["alpha"], 1)
    assert await names(status="revoked") == (["gamma"], 1)
    assert await names(status="active", sort="name", descending=False) == (
        ["alpha", "beta 100%"],
        2,
    )
    assert await names(status="expired") == ([], 0)
    assert await names(status="expired", now=now + 7200) == ([], 0)  # revoked counts as revoked
    assert await names(sort="name", descending=False, limit=1, offset=1) == (["beta 100%"], 3)
    # alpha's budget period is the UTC day: the 50 USD of two days ago is not in it.
    page, _ = await store.keys.search(now=now, starts=starts, sort="spend")
    assert [(record.name, spend) for record, spend in page][:2] == [
        ("alpha", 2.0),
        ("beta 100%", 1.0),
    ]
    found = await store.keys.spend_of(beta.id, now=now, starts=starts)
    assert found is not None and found[1] == 1.0
