"""A page of another site, in a real Chromium, cannot make the open gateway act.

The other site is another local origin (``http://localhost:<another port>``), as a dev
server or any local web app would be: Chromium's Local Network Access already stops a
public site's page from reaching 127.0.0.1, but not a page on the same machine.
"""

from __future__ import annotations

import http.server
import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser

#: What a page sends without asking first (no CORS preflight): a text/plain POST.
SIMPLE_POST = """async ([url, body]) => {
  const headers = {"Content-Type": "text/plain"};
  await fetch(url, {method: "POST", mode: "no-cors", body, headers});
  return "answered";
}"""


class OtherSite(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = b"<!doctype html><title>another site</title>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def other_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OtherSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_of_another_local_site_cannot_connect_a_provider_or_make_chats(
    browser: Browser, gateway_url: str, other_site: str
) -> None:
    title = f"made by another site {uuid.uuid4()}"
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(other_site)
        # Each fetch resolves once the gateway has answered: whatever it did is done.
        connection = '{"provider": "openai", "base_url": "http://attacker.example/v1"}'
        sent = page.evaluate(SIMPLE_POST, [f"{gateway_url}/chat/api/connections", connection])
        assert sent == "answered"
        session = f'{{"title": "{title}"}}'
        page.evaluate(SIMPLE_POST, [f"{gateway_url}/chat/api/sessions", session])
    finally:
        context.close()
    connections = httpx.get(f"{gateway_url}/chat/api/connections").json()["connections"]
    assert not any(c["base_url"] == "http://attacker.example/v1" for c in connections)
    sessions = httpx.get(f"{gateway_url}/chat/api/sessions").json()["sessions"]
    assert not any(s["title"] == title for s in sessions)
