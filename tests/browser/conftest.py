"""A real headless Chromium against a real gateway (and a real ``modelway mock`` upstream).

One gateway (and mock) serves the whole browser suite and one browser each module; each
test gets a fresh browser context (its own localStorage) and works in chats it creates
itself. The admin dashboard's tests have a second gateway of their own, with a master key
(``admin_gateway_url``), and make their own keys and teams in it. Debian's
``/usr/bin/chromium`` is used: playwright's own browser download is not available here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from modelway.gateway.web_pages import STATIC_DIR
from tests.browser.admin_page import MASTER_KEY, sign_in
from tests.browser.chat_page import new_chat, open_chat
from tests.integration.gateway import running_gateway
from tests.integration.mockserver import running_mock

CHROMIUM = Path(os.environ.get("MODELWAY_TEST_CHROMIUM", "/usr/bin/chromium"))
#: Milliseconds a page action or expectation waits before failing. They return as soon as
#: the page is ready, so only a failing test pays for patience a busy machine needs.
PATIENCE_MS = 30_000
expect.set_options(timeout=PATIENCE_MS)
#: The paced upstream streams this many words a second: slow enough to press Stop.
SLOW_WORDS_PER_SECOND = 20
#: Aliases whose upstream (``modelway mock``) is slow or fails on purpose.
ALIASES = """
models:
  - name: slow
    retries: 0
    deployments:
      - {provider: openai, model: echo}
  - name: broken
    retries: 0
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:500"}}
  - name: limited
    retries: 0
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:429"}}
prices:
  # The mock stands in for OpenAI: its echo has a price, so keys with a USD budget may
  # call it (a model with no price is refused to them). Any other openai/ model has none.
  openai/echo: {input_per_million: 1.0, output_per_million: 2.0}
"""


@pytest.fixture(scope="session")
def mock_url() -> Iterator[str]:
    with running_mock("--tokens-per-second", str(SLOW_WORDS_PER_SECOND)) as url:
        yield url


@pytest.fixture(scope="session")
def gateway_url(mock_url: str) -> Iterator[str]:
    if not (STATIC_DIR / "index.html").is_file():
        pytest.fail("the web chat is not built: run scripts/setup (npm builds web/)")
    env = {"OPENAI_BASE_URL": f"{mock_url}/v1", "OPENAI_API_KEY": "sk-test-openai-key"}
    with running_gateway(env, ALIASES) as url:
        yield url


# Module-scoped: sync playwright keeps an event loop running while it is open, and the
# async tests that may run after this suite need the thread's loop to themselves.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (scripts/system-packages installs it)"
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM))
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, gateway_url: str) -> Iterator[BrowserContext]:
    context = browser.new_context(base_url=gateway_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(PATIENCE_MS)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """The chat, opened on a new chat of its own and ready for a message."""
    page = context.new_page()
    open_chat(page)
    new_chat(page)
    return page


@pytest.fixture(scope="session")
def admin_gateway_url(mock_url: str) -> Iterator[str]:
    """A gateway with a master key (so the admin API is on), the mock as its OpenAI."""
    if not (STATIC_DIR / "admin.html").is_file():
        pytest.fail("the admin dashboard is not built: run scripts/setup (npm builds web/)")
    env = {
        "OPENAI_BASE_URL": f"{mock_url}/v1",
        "OPENAI_API_KEY": "sk-test-openai-key",
        "MODELWAY_MASTER_KEY": MASTER_KEY,
    }
    with running_gateway(env, ALIASES) as url:
        yield url


@pytest.fixture
def admin_context(browser: Browser, admin_gateway_url: str) -> Iterator[BrowserContext]:
    context = browser.new_context(
        base_url=admin_gateway_url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(PATIENCE_MS)
    yield context
    context.close()


@pytest.fixture
def admin(admin_context: BrowserContext) -> Page:
    """The dashboard, signed in with the master key."""
    page = admin_context.new_page()
    sign_in(page)
    return page
