"""The web chat's API and self-service sign-up, fed any JSON: never a 5xx.

Each request starts as the web chat (or a sign-up form) sends it; one to three of its
parts are then swapped for any JSON or deleted, on a session that exists.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.gateways import Setup, in_process_gateway
from tests.unit.test_dialect_hostile_bodies import _mutate, _paths
from tests.unit.test_hostile_http_bodies import _JSON
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

EXAMPLES = 150
#: Values at the edges of what a store column, a header or a check holds, drawn half the
#: time: random JSON alone rarely lands one on the field that breaks.
_EDGES = st.sampled_from(
    [2**31, 2**63 - 1, 2**63, -(2**63), -1, 0, 1e300, -0.0, "", " ", "\x00", "m" * 300,
     "é€", True, None, [], {}]
)  # fmt: skip
JSON_HEADERS = {"content-type": "application/json"}
SESSION = {"title": "Plans", "model": "mock/echo", "system": "Be brief.", "temperature": 0.5,
           "max_tokens": 100}  # fmt: skip
#: What each route is sent, such as the web chat or a sign-up form sends it.
REALISTIC: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/chat/api/sessions"): SESSION,
    ("PATCH", "/chat/api/sessions/{id}"): SESSION,
    ("POST", "/chat/api/sessions/{id}/messages"): {
        "content": "hello",
        "model": "mock/echo",
        "regenerate": False,
    },
    ("POST", "/chat/api/connections"): {
        "provider": "groq",
        "api_key": "gsk-0123456789abcdef",
        "base_url": "http://127.0.0.1:9/v1",
    },
    ("POST", "/auth/register"): {"email": "ann@example.com", "password": "a long passphrase"},
    ("POST", "/auth/keys"): {
        "email": "ann@example.com",
        "password": "a long passphrase",
        "name": "laptop",
    },
}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path, "server: {signup: true}\n") as setup:
        yield setup


async def _session_id(gateway: Setup) -> str:
    created = await gateway.http.post("/chat/api/sessions", json=SESSION, headers=JSON_HEADERS)
    assert created.status_code in (200, 201), created.text
    session_id: str = created.json()["id"]
    return session_id


@pytest.mark.parametrize(("method", "path"), sorted(REALISTIC))
async def test_the_realistic_request_itself_is_answered(
    gateway: Setup, method: str, path: str
) -> None:
    url = path.replace("{id}", await _session_id(gateway))
    body = REALISTIC[method, path]
    response = await gateway.http.request(method, url, json=body, headers=JSON_HEADERS)
    assert response.status_code < 500, response.text


@pytest.mark.parametrize(("method", "path"), sorted(REALISTIC))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_part_swapped_for_any_json_is_never_a_5xx(
    gateway: Setup, method: str, path: str, data: st.DataObject
) -> None:
    body: Any = copy.deepcopy(REALISTIC[method, path])
    if data.draw(st.booleans(), label="whole body replaced"):
        body = data.draw(_JSON, label="body")
    else:
        for _ in range(data.draw(st.integers(1, 3), label="changes")):
            places = _paths(body)
            if not places:
                break
            place = data.draw(st.sampled_from(places), label="place")
            value = data.draw(_EDGES | _JSON, label="value")
            _mutate(body, place, value, delete=data.draw(st.booleans(), label="delete"))
    url = path.replace("{id}", await _session_id(gateway))
    response = await gateway.http.request(method, url, json=body, headers=JSON_HEADERS)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["error"]["message"], str)


@pytest.mark.parametrize(
    ("field", "value"), [("max_tokens", 2**63), ("model", "m" * 257), ("temperature", 1e300)]
)
async def test_a_session_setting_past_what_the_store_holds_is_a_400_naming_it(
    gateway: Setup, field: str, value: object
) -> None:
    body = {**SESSION, field: value}
    created = await gateway.http.post("/chat/api/sessions", json=body, headers=JSON_HEADERS)
    assert created.status_code == 400
    assert created.json()["error"]["message"].startswith(f"{field}:")
