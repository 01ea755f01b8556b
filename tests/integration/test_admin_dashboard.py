"""The admin dashboard's API against a real gateway with two workers: a session opened on
one worker holds on the other, and a key's edit reaches every worker within 5 seconds."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.gateway import running_gateway
from tests.polling import wait_until

MASTER = "mk-dashboard-test-master-key-0123456789"
AS_MASTER = {"authorization": f"Bearer {MASTER}"}
CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello"}]}
#: The promise: an edit, like a revocation, holds on every worker within this many seconds.
PROPAGATION = 5.0


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "MODELWAY_MASTER_KEY": MASTER,
        "MODELWAY_DATA_DIR": str(tmp_path_factory.mktemp("dashboard-data")),
    }
    with running_gateway(env, "server:\n  workers: 2\n") as root:
        yield root


def chat(url: str, key: object) -> httpx.Response:
    """One call on a new connection, so the two workers take turns answering."""
    return httpx.post(
        f"{url}/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def new_key(url: str, **settings: object) -> dict[str, object]:
    answer = httpx.post(f"{url}/admin/api/keys", json={"name": "k", **settings}, headers=AS_MASTER)
    assert answer.status_code == 201, answer.text
    created: dict[str, object] = answer.json()
    return created


def test_a_session_cookie_works_on_every_worker_until_signed_out(url: str) -> None:
    signed_in = httpx.post(f"{url}/admin/api/session", json={"master_key": MASTER}, timeout=30)
    assert signed_in.status_code == 200
    cookie = signed_in.headers["set-cookie"]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/admin"} <= flags and "secure" not in flags
    value = signed_in.cookies["mw_admin"]
    csrf = signed_in.json()["csrf"]
    for _ in range(6):  # a new connection each: both workers answer some
        listed = httpx.get(f"{url}/admin/api/keys", cookies={"mw_admin": value}, timeout=30)
        assert listed.status_code == 200
    refused = httpx.post(
        f"{url}/admin/api/keys", json={"name": "x"}, cookies={"mw_admin": value}, timeout=30
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    out = httpx.delete(
        f"{url}/admin/api/session",
        cookies={"mw_admin": value},
        headers={"x-csrf-token": csrf},
        timeout=30,
    )
    assert out.status_code == 204
    for _ in range(4):
        gone = httpx.get(f"{url}/admin/api/keys", cookies={"mw_admin": value}, timeout=30)
        assert gone.status_code == 401


def test_a_lower_rpm_refuses_within_five_seconds(url: str) -> None:
    created = new_key(url, models=["mock/*"])
    for _ in range(4):  # both workers have the key cached, unlimited
        assert chat(url, created["key"]).status_code == 200
    edited = httpx.patch(
        f"{url}/admin/api/keys/{created['id']}", json={"rpm": 1}, headers=AS_MASTER, timeout=30
    )
    assert edited.status_code == 200 and edited.json()["rpm"] == 1
    started = time.monotonic()
    refused = wait_until(
        lambda: (answer := chat(url, created["key"])).status_code == 429 and answer,
        within=PROPAGATION + 5,
        what="a 429 from the new rpm",
    )
    assert time.monotonic() - started < PROPAGATION
    assert isinstance(refused, httpx.Response) and "retry-after" in refused.headers


def test_an_edit_reaches_every_worker_within_five_seconds(url: str) -> None:
    created = new_key(url, models=["mock/*"])
    for _ in range(4):
        assert chat(url, created["key"]).status_code == 200
    edited = httpx.patch(
        f"{url}/admin/api/keys/{created['id']}",
        json={"models": ["openai/*"]},
        headers=AS_MASTER,
        timeout=30,
    )
    assert edited.status_code == 200
    # Six calls in a row, on new connections, all refused: both workers have the edit.
    wait_until(
        lambda: all(chat(url, created["key"]).status_code == 403 for _ in range(6)),
        within=PROPAGATION,
        what="every worker refusing the edited key's model",
    )


def test_a_team_budget_refuses_the_teams_keys_on_every_worker(url: str) -> None:
    made = httpx.post(
        f"{url}/admin/api/teams", json={"name": "broke", "budget_usd": 0}, headers=AS_MASTER
    )
    assert made.status_code == 201
    created = new_key(url, owner_team="broke")

    def refused_everywhere() -> bool:
        answers = [chat(url, created["key"]) for _ in range(6)]
        return all(
            answer.status_code == 429 and answer.json()["error"]["code"] == "budget_exceeded"
            for answer in answers
        )

    wait_until(refused_everywhere, within=PROPAGATION, what="the team budget on every worker")
