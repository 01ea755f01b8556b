"""An open gateway (no key) against what a web page can make a browser do, through a real
``modelway serve``: DNS rebinding, cross-site requests, and reading the local network
through a provider connected at run time."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.gateway import running_gateway

SECRET = "AKIAIOSFODNN7EXAMPLE-internal-secret"
HELLO = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello there"}]}
EVIL = "http://evil.example"
#: What a cross-site page can send without a preflight: a "simple" text/plain POST.
SIMPLE = {"content-type": "text/plain;charset=UTF-8", "origin": EVIL}


class InternalService(http.server.BaseHTTPRequestHandler):
    """A service on the gateway's network whose error page holds a secret."""

    def _fail(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = f"<h1>500</h1><pre>DB_PASSWORD={SECRET}</pre>".encode()
        self.send_response(500)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _fail

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def internal_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), InternalService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with running_gateway({}, "server:\n  retries: 0\n") as url:
        yield url


def test_a_rebound_name_reads_nothing(gateway: str) -> None:
    assert httpx.get(f"{gateway}/chat/api/sessions").status_code == 200
    rebound = httpx.get(f"{gateway}/chat/api/sessions", headers={"host": "attacker.example"})
    assert rebound.status_code == 421
    assert rebound.json()["error"]["code"] == "host_not_allowed"
    # The chat path granian serves natively refuses it too, in its own dialect.
    messages = {"model": "mock/echo", "max_tokens": 10, "messages": HELLO["messages"]}
    anthropic = httpx.post(
        f"{gateway}/v1/messages", json=messages, headers={"host": "attacker.example"}
    )
    assert anthropic.status_code == 421 and anthropic.json()["type"] == "error"


def test_a_cross_site_page_cannot_re_point_a_provider_or_chat(gateway: str) -> None:
    body = '{"provider": "openai", "base_url": "http://attacker.example/v1"}'
    refused = httpx.post(f"{gateway}/chat/api/connections", content=body, headers=SIMPLE)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "cross_site_request"
    assert httpx.get(f"{gateway}/chat/api/connections").json()["connections"] == []
    sessions = httpx.post(f"{gateway}/chat/api/sessions", content="{}", headers=SIMPLE)
    assert sessions.status_code == 403
    # The chat calls granian serves natively: no credit spent for a drive-by page.
    spend = httpx.post(f"{gateway}/v1/chat/completions", json=HELLO, headers={"origin": EVIL})
    assert spend.status_code == 403 and spend.json()["error"]["code"] == "cross_site_request"
    fetch = {"sec-fetch-site": "cross-site", "content-type": "text/plain"}
    assert httpx.post(f"{gateway}/api/chat", json=HELLO, headers=fetch).status_code == 403


def test_sdks_and_the_gateways_own_page_keep_working(gateway: str) -> None:
    sdk = httpx.post(f"{gateway}/v1/chat/completions", json=HELLO)
    assert sdk.status_code == 200
    page = {"origin": gateway, "sec-fetch-site": "same-origin"}
    created = httpx.post(f"{gateway}/chat/api/sessions", json={}, headers=page)
    assert created.status_code == 201
    deleted = httpx.delete(f"{gateway}/chat/api/sessions/{created.json()['id']}", headers=page)
    assert deleted.status_code == 204


def test_an_internal_error_page_is_summarised_never_reflected(
    gateway: str, internal_url: str
) -> None:
    connection = {"provider": "groq", "base_url": f"{internal_url}/v1"}
    assert httpx.post(f"{gateway}/chat/api/connections", json=connection).status_code == 201
    try:
        request = {**HELLO, "model": "groq/llama"}
        answer = httpx.post(f"{gateway}/v1/chat/completions", json=request, timeout=30)
        assert answer.status_code == 502
        message = answer.json()["error"]["message"]
        assert "500 Internal Server Error" in message and SECRET not in answer.text
        session = httpx.post(f"{gateway}/chat/api/sessions", json={}).json()["id"]
        reply = httpx.post(
            f"{gateway}/chat/api/sessions/{session}/messages",
            json={"content": "hi", "model": "groq/llama"},
            timeout=30,
        )
        assert re.search(r'"type":\s*"error"', reply.text) and SECRET not in reply.text
    finally:
        httpx.delete(f"{gateway}/chat/api/connections/groq")


@pytest.mark.parametrize(
    "base_url",
    ["http://169.254.169.254/latest/meta-data/", "http://metadata.google.internal/v1"],
)
def test_a_metadata_service_cannot_be_connected(gateway: str, base_url: str) -> None:
    connection = {"provider": "openai", "base_url": base_url}
    refused = httpx.post(f"{gateway}/chat/api/connections", json=connection)
    assert refused.status_code == 400
    assert "server.allow_link_local_provider_urls" in refused.json()["error"]["message"]
    assert httpx.get(f"{gateway}/chat/api/connections").json()["connections"] == []


def test_bound_to_every_interface_an_open_gateway_answers_addresses_but_not_names() -> None:
    # `serve --host 0.0.0.0 --insecure`: reached by the machine's addresses, as its user
    # expects; a name needs server.allowed_hosts, or a rebinding page could use one.
    with running_gateway({}, None, "--host", "0.0.0.0", "--insecure") as url:
        local = url.replace("0.0.0.0", "127.0.0.1")
        port = local.rpartition(":")[2]
        for host, status in [
            (f"192.0.2.10:{port}", 200),
            (f"[2001:db8::1]:{port}", 200),
            (f"localhost:{port}", 200),
            (f"gpu-box.lan:{port}", 421),
        ]:
            assert httpx.get(f"{local}/health", headers={"host": host}).status_code == status
