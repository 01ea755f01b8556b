"""The page around the chat: providers, the gateway key, themes, phones, and how it is served."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Browser, Page, Request, Route, expect

from modelway.gateway.web_pages import SECURITY_HEADERS
from tests.browser.admin_page import MASTER_KEY
from tests.browser.chat_page import (
    message_box,
    new_chat,
    open_chat,
    pick_model,
    reload,
    send,
    wait_until_answered,
)

SECRET = "gsk-test-secret-key-0123456789"


def test_a_provider_connected_at_run_time_serves_models_and_its_key_never_comes_back(
    page: Page, mock_url: str
) -> None:
    bodies: list[str] = []
    page.on("response", lambda response: bodies.append(_text(response)))
    page.get_by_role("button", name="Connect a provider").click()
    dialog = page.get_by_role("dialog", name="Connect a provider")
    dialog.get_by_label("Provider", exact=True).select_option("groq")
    dialog.get_by_label("API key").fill(SECRET)
    dialog.get_by_label("Base URL").fill(f"{mock_url}/v1")
    dialog.get_by_role("button", name="Connect").click()
    expect(dialog.locator(".connection")).to_contain_text("groq")
    expect(dialog.locator(".connection")).to_contain_text("key stored")
    expect(dialog.get_by_label("API key")).to_have_value("")
    dialog.get_by_role("button", name="Close").click()

    pick_model(page, "groq/echo")
    reply = send(page, "through a provider connected just now")
    wait_until_answered(reply)
    expect(reply.locator(".origin")).to_have_text("groq · echo")

    page.get_by_role("button", name="Connect a provider").click()
    dialog.get_by_role("button", name="Disconnect groq").click()
    expect(dialog.locator(".connection")).to_have_count(0)
    assert bodies and not any(SECRET in body for body in bodies)


def test_a_provider_whose_models_cannot_be_listed_says_so(page: Page) -> None:
    # Connected, yet nothing of it in the picker: the dialog says why.
    page.get_by_role("button", name="Connect a provider").click()
    dialog = page.get_by_role("dialog", name="Connect a provider")
    dialog.get_by_label("Provider", exact=True).select_option("mistral")
    dialog.get_by_label("API key").fill("not-a-real-key")
    dialog.get_by_label("Base URL").fill("http://127.0.0.1:9/v1")  # nothing listens there
    dialog.get_by_role("button", name="Connect").click()
    connection = dialog.locator(".connection").filter(has_text="mistral")
    expect(connection.locator(".connection-error")).to_contain_text(
        "Its models could not be listed"
    )
    dialog.get_by_role("button", name="Disconnect mistral").click()
    expect(dialog.locator(".connection").filter(has_text="mistral")).to_have_count(0)


def _text(response: object) -> str:
    try:
        return response.text()  # type: ignore[attr-defined,no-any-return]
    except Exception:
        return ""  # a streamed body or a redirect has no text to read back


def test_a_401_asks_for_the_gateway_key_and_sends_it_as_bearer(page: Page) -> None:
    seen: list[str | None] = []

    def require_key(route: Route, request: Request) -> None:
        authorization = request.headers.get("authorization")
        seen.append(authorization)
        if authorization != "Bearer mw-test-key":
            body = '{"error": {"message": "a key is required", "type": "authentication_error"}}'
            route.fulfill(status=401, body=body, content_type="application/json")
        else:
            route.continue_()

    page.route("**/chat/api/sessions", require_key)
    page.reload()
    dialog = page.get_by_role("dialog", name="Gateway key")
    expect(dialog).to_contain_text("a key is required")
    dialog.get_by_label("Key", exact=True).fill("mw-test-key")
    dialog.get_by_role("button", name="Use key").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".session").first).to_be_visible()
    assert seen[0] is None and seen[-1] == "Bearer mw-test-key"
    assert page.evaluate("localStorage.getItem('modelway.gatewayKey')") == "mw-test-key"


def test_the_theme_follows_the_system_until_toggled(browser: Browser, gateway_url: str) -> None:
    context = browser.new_context(base_url=gateway_url, color_scheme="dark")
    page = context.new_page()
    open_chat(page)
    root = page.locator("html")
    expect(root).to_have_attribute("data-theme", "dark")
    page.get_by_role("button", name="Light theme").click()
    expect(root).to_have_attribute("data-theme", "light")
    reload(page)
    expect(root).to_have_attribute("data-theme", "light")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    context.close()


def test_on_a_phone_the_sessions_open_as_a_drawer(browser: Browser, gateway_url: str) -> None:
    context = browser.new_context(
        base_url=gateway_url, viewport={"width": 390, "height": 800}, is_mobile=True
    )
    page = context.new_page()
    open_chat(page)
    sidebar = page.locator("#sidebar")
    expect(sidebar).not_to_be_in_viewport()
    page.get_by_role("button", name="Show chats").click()
    expect(sidebar).to_be_in_viewport()
    new_chat(page)
    expect(sidebar).not_to_be_in_viewport()
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "small screen"))
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing sticks out sideways
    # A code block's Copy button sits above its code, not over the first line.
    wait_until_answered(send(page, "```\n" + "x = 1  # a line as long as the screen is wide\n```"))
    block = page.locator(".code-block").last
    button = block.locator(".copy").bounding_box()
    first_line = block.locator("code").evaluate(
        "code => { const r = document.createRange(); r.selectNodeContents(code);"
        " return r.getClientRects()[0].top; }"
    )
    assert button is not None and button["y"] + button["height"] <= first_line
    context.close()


def test_assets_are_cached_for_good_and_the_page_revalidated(gateway_url: str) -> None:
    page = httpx.get(f"{gateway_url}/")
    assert page.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = re.search(r'src="(/static/app-[A-Z0-9]+\.js)"', page.text)
    assert script is not None
    asset = httpx.get(f"{gateway_url}{script.group(1)}")
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert httpx.get(f"{gateway_url}/static/nothing-here.js").status_code == 404


def test_the_page_carries_its_security_headers_however_it_is_asked_for(gateway_url: str) -> None:
    for path in ("/", "/static/index.html"):
        page = httpx.get(f"{gateway_url}{path}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for name, value in SECURITY_HEADERS.items():
            assert page.headers[name] == value, (path, name)


def test_a_key_given_only_when_sending_still_fills_the_model_picker(
    browser: Browser, admin_gateway_url: str
) -> None:
    # The first prompt (the page's start) cancelled: the page has no models. The key given
    # at the prompt that sending brings up must get them, or every send is a 400.
    context = browser.new_context(base_url=admin_gateway_url)
    page = context.new_page()
    page.goto("/")
    dialog = page.get_by_role("dialog", name="Gateway key")
    # In words for a person, not the API's "send it as 'Authorization: Bearer <key>'".
    expect(dialog).to_contain_text("This gateway asks for a key.")
    expect(dialog).not_to_contain_text("Authorization")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#model-picker option")).to_have_count(0)
    box = message_box(page)
    box.fill("sent after the key")
    box.press("Enter")
    dialog.get_by_label("Key", exact=True).fill(MASTER_KEY)
    dialog.get_by_role("button", name="Use key").click()
    expect(page.locator(".message.user")).to_have_text(["sent after the key"])
    reply = page.locator(".message.assistant")
    expect(reply).to_have_attribute("data-message-id", re.compile(r"^[0-9a-f]{32}$"))
    expect(reply).not_to_contain_text("name one")
    assert page.locator("#model-picker option").count() > 0
    context.close()


def test_a_message_sent_with_the_key_prompt_cancelled_goes_back_in_the_box(
    browser: Browser, admin_gateway_url: str
) -> None:
    # Cancelled at the start and again when sending: nothing could be sent, so the text
    # is not lost, and the notice says why in words for a person.
    context = browser.new_context(base_url=admin_gateway_url)
    page = context.new_page()
    page.goto("/")
    dialog = page.get_by_role("dialog", name="Gateway key")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    box = message_box(page)
    box.fill("typed without a key")
    box.press("Enter")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(box).to_have_value("typed without a key")
    notice = page.locator("#notice")
    expect(notice).to_contain_text("This gateway asks for a key")
    expect(notice).to_contain_text("back in the box")
    expect(notice).not_to_contain_text("Authorization")
    expect(page.locator(".message")).to_have_count(0)
    context.close()


def test_a_wide_table_keeps_its_words_whole_and_scrolls_sideways_on_a_phone(
    browser: Browser, gateway_url: str
) -> None:
    context = browser.new_context(
        base_url=gateway_url, viewport={"width": 390, "height": 800}, is_mobile=True
    )
    page = context.new_page()
    open_chat(page)
    page.get_by_role("button", name="Show chats").click()
    new_chat(page)
    pick_model(page, "mock/echo")
    headers = [f"Heading{n}" for n in range(12)]
    table = "\n".join(
        [
            "| " + " | ".join(headers) + " |",
            "|" + "---|" * len(headers),
            "| " + " | ".join(f"value{n}" for n in range(12)) + " |",
        ]
    )
    reply = send(page, table)
    wait_until_answered(reply)
    shown = reply.locator("table")
    expect(shown.locator("th")).to_have_count(12)
    # Each heading on one line (not a column of letters), the table wider than the reply
    # and scrolled within it, the page itself no wider than the phone.
    lines = shown.locator("th").evaluate_all(
        """cells => cells.map(cell => { const r = document.createRange();
             r.selectNodeContents(cell); return r.getClientRects().length; })"""
    )
    assert lines == [1] * 12
    assert shown.evaluate("t => t.scrollWidth > t.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_a_chat_whose_model_is_not_offered_now_says_what_that_means_and_what_to_do(
    page: Page,
) -> None:
    session = page.request.post(
        "/chat/api/sessions", data={"title": "Old chat", "model": "groq/llama-3.3-70b"}
    ).json()
    try:
        open_chat(page, f"/#{session['id']}")
        reload(page)  # the page was open already: a new hash alone loads nothing
        picker = page.get_by_label("Model", exact=True)
        expect(picker).to_have_value("groq/llama-3.3-70b")
        expect(picker.locator("option:checked")).to_have_text(
            "groq/llama-3.3-70b (not offered now)"
        )
        note = page.locator("#model-note")
        expect(note).to_be_visible()
        expect(note).to_contain_text("groq/llama-3.3-70b, is not offered by the gateway now")
        expect(note).to_contain_text("Pick another model, or connect its provider")
        expect(picker).to_have_accessible_description(re.compile("not offered by the gateway now"))
        # Another model picked: nothing left to explain.
        pick_model(page, "mock/echo")
        expect(note).to_be_hidden()
        expect(picker).to_have_accessible_description("")
    finally:
        page.request.delete(f"/chat/api/sessions/{session['id']}")


def test_a_disconnect_that_fails_says_so(page: Page, mock_url: str) -> None:
    page.get_by_role("button", name="Connect a provider").click()
    dialog = page.get_by_role("dialog", name="Connect a provider")
    dialog.get_by_label("Provider", exact=True).select_option("together")
    dialog.get_by_label("API key").fill("together-test-key")
    dialog.get_by_label("Base URL").fill(f"{mock_url}/v1")
    dialog.get_by_role("button", name="Connect").click()
    expect(dialog.locator(".connection")).to_contain_text("together")

    def unreachable(route: Route, request: Request) -> None:
        if request.method != "DELETE":
            route.continue_()
            return
        body = {"error": {"message": "the gateway's store is unreachable; try again shortly"}}
        route.fulfill(status=503, json=body)

    page.route("**/chat/api/connections/together", unreachable)
    dialog.get_by_role("button", name="Disconnect together").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "together is still connected: the gateway's store is unreachable; try again shortly"
    )
    expect(dialog.locator(".connection")).to_contain_text("together")
    page.unroute("**/chat/api/connections/together")
    dialog.get_by_role("button", name="Disconnect together").click()
    expect(dialog.locator(".connection").filter(has_text="together")).to_have_count(0)
    expect(dialog.get_by_role("alert")).to_be_hidden()
