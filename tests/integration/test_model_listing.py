"""A real gateway whose upstreams list their models in shapes no vendor documents.

The odd upstream is started here (``http.server`` on a free port); the well-behaved one
is ``modelway mock``. One upstream's listing, whatever it holds, must not take every
other provider's models away from a caller, nor answer them a 500.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.integration.gateway import running_gateway

pytestmark = pytest.mark.integration

#: What the odd upstream answers to each listing request, by path.
LISTINGS = {
    # A bare string among the models: the object is listed, the string left out.
    "/v1/models": b'{"object": "list", "data": [{"id": "gpt-x"}, "hidden-model"]}',
    "/api/tags": b'{"models": 5}',
    "/v1beta/models": b'{"models": {"name": "models/gemini-x"}}',
}


class OddListings(BaseHTTPRequestHandler):
    """Answers each listing request with its ``LISTINGS`` body, anything else with a 404."""

    def do_GET(self) -> None:
        body = LISTINGS.get(self.path.split("?")[0])
        self.send_response(404 if body is None else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's output is not the place for an upstream's access log


@pytest.fixture(scope="module")
def odd_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OddListings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def gateway(odd_upstream: str, mock_url: str) -> Iterator[str]:
    env = {
        "OPENAI_BASE_URL": f"{odd_upstream}/v1",
        "OPENAI_API_KEY": "sk-test-openai-key",
        "OLLAMA_BASE_URL": odd_upstream,
        "GEMINI_BASE_URL": odd_upstream,
        "GEMINI_API_KEY": "gemini-test-key",
        "ANTHROPIC_BASE_URL": mock_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
    }
    with running_gateway(env) as url:
        yield url


def test_an_odd_listing_leaves_out_what_it_cannot_read_and_the_rest_is_listed(
    gateway: str,
) -> None:
    listed = httpx.get(f"{gateway}/v1/models", timeout=30)
    assert listed.status_code == 200, listed.text
    ids = {model["id"] for model in listed.json()["data"]}
    assert {"openai/gpt-x", "anthropic/echo", "anthropic/mock-1", "mock/echo"} <= ids
    assert not [i for i in ids if i.startswith(("ollama/", "gemini/")) or "hidden" in i]

    tags = httpx.get(f"{gateway}/api/tags", timeout=30)
    assert tags.status_code == 200, tags.text
    assert {model["name"] for model in tags.json()["models"]} == ids

    one = httpx.get(f"{gateway}/v1/models/openai/gpt-x", timeout=30)
    assert (one.status_code, one.json()["id"]) == (200, "openai/gpt-x")
