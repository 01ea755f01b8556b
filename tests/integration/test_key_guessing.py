"""Keys on the native (RSGI) chat path of a real ``modelway serve``: a key header sent
twice is refused, and wrong keys with a real key's prefix are limited per client address
without locking the key's owner out.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.gateway import running_gateway
from tests.integration.test_keys_pipeline import create_key

MASTER = "master-test-key-0123456789"
CONFIG = "server:\n  key_checks: {failures_per_prefix: 3}\n"
BODY = {"model": "mock/echo", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
ATTACKER = "127.0.0.2"  # another loopback address: Linux answers all of 127.0.0.0/8


@pytest.fixture(scope="module")
def data_env() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory() as data:
        yield {"MODELWAY_DATA_DIR": data, "MODELWAY_MASTER_KEY": MASTER}


@pytest.fixture(scope="module")
def gateway(data_env: dict[str, str]) -> Iterator[str]:
    with running_gateway(data_env, CONFIG) as url:
        yield url


def post(
    url: str, path: str, headers: list[tuple[str, str]], source: str = "127.0.0.1"
) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as http:
        return http.post(f"{url}{path}", json=BODY, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [
        [("authorization", f"Bearer {MASTER}"), ("authorization", "Bearer wrong")],
        [("authorization", "Bearer wrong"), ("authorization", f"Bearer {MASTER}")],
    ],
)
def test_the_native_chat_path_refuses_two_authorization_headers(
    gateway: str, headers: list[tuple[str, str]]
) -> None:
    refused = post(gateway, "/v1/chat/completions", headers)
    assert refused.status_code == 401
    assert "more than one Authorization header" in refused.json()["error"]["message"]
    alone = post(gateway, "/v1/chat/completions", [("authorization", f"Bearer {MASTER}")])
    assert alone.status_code == 200


def test_the_native_chat_path_refuses_two_x_api_key_headers_in_anthropic_shape(
    gateway: str,
) -> None:
    refused = post(gateway, "/v1/messages", [("x-api-key", MASTER), ("x-api-key", MASTER)])
    assert refused.status_code == 401
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert "more than one x-api-key header" in body["error"]["message"]
    assert post(gateway, "/v1/messages", [("x-api-key", MASTER)]).status_code == 200


@pytest.mark.parametrize(
    ("path", "name"), [("/v1/chat/completions", "Authorization"), ("/v1/messages", "x-api-key")]
)
def test_a_key_header_that_is_not_ascii_is_told_as_such(gateway: str, path: str, name: str) -> None:
    # granian gives no value that is not ASCII text: it must not read as no key at all.
    value = ("Bearer ключ" if name == "Authorization" else "ключ").encode()
    with httpx.Client(timeout=30) as http:
        refused = http.post(f"{gateway}{path}", json=BODY, headers=[(name.encode(), value)])
    assert refused.status_code == 401
    assert f"the {name} header is not ASCII text" in refused.text


def test_an_idempotency_key_that_is_not_ascii_is_refused_not_ignored(gateway: str) -> None:
    headers = [
        (b"authorization", f"Bearer {MASTER}".encode()),
        (b"idempotency-key", "ключ".encode()),
    ]
    with httpx.Client(timeout=30) as http:
        refused = http.post(f"{gateway}/v1/chat/completions", json=BODY, headers=headers)
    assert refused.status_code == 400
    assert "Idempotency-Key: not ASCII text" in refused.json()["error"]["message"]


def test_wrong_keys_with_a_real_prefix_are_limited_per_address_not_for_the_owner(
    gateway: str, data_env: dict[str, str]
) -> None:
    _, key = create_key(data_env)
    statuses = []
    for n in range(4):
        wrong = [("authorization", f"Bearer {key[:11]}{n:040d}")]
        statuses.append(post(gateway, "/v1/chat/completions", wrong, source=ATTACKER))
    assert [response.status_code for response in statuses] == [401, 401, 401, 429]
    limited = statuses[-1]
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    assert limited.json()["error"]["type"] == "rate_limit_error"
    # The owner, elsewhere, presents the key for the first time: checked and served.
    owner = post(gateway, "/v1/chat/completions", [("authorization", f"Bearer {key}")])
    assert owner.status_code == 200
    # And once verified, the key works from the limited address too.
    again = post(gateway, "/v1/chat/completions", [("authorization", f"Bearer {key}")], ATTACKER)
    assert again.status_code == 200
