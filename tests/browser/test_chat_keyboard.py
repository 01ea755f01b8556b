"""The web chat by keyboard alone: a skip link first, every control reachable and named,
and the focus never left on nothing after a press."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.chat_page import (
    STREAMING,
    message_box,
    new_chat,
    open_chat,
    pick_model,
    reply_text,
    send,
    wait_until_answered,
)


def focused(page: Page) -> str:
    """The focused element, as its accessible name (or tag) says it."""
    return str(
        page.evaluate(
            "(() => { const e = document.activeElement;"
            " return e === document.body ? 'BODY' :"
            " (e.getAttribute('aria-label') || e.textContent.trim() || e.tagName); })()"
        )
    )


def from_the_top(page: Page) -> None:
    """Tab starts again from the top of the page (as after a load with no focus set)."""
    page.locator("body").evaluate(
        "body => { body.tabIndex = -1; body.focus(); body.removeAttribute('tabindex'); }"
    )


def test_the_first_tab_reaches_a_skip_link_to_the_message_box(page: Page) -> None:
    hash_before = page.evaluate("location.hash")
    from_the_top(page)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to message box")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(message_box(page)).to_be_focused()
    # The address still names the open chat, not "#prompt".
    assert page.evaluate("location.hash") == hash_before


def test_every_control_of_the_chat_has_a_name(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "named"))
    for name in (
        "New chat",
        "Connect a provider",
        "Gateway key",
        "Chat settings",
        "Send",
        "Copy reply",
        "Regenerate reply",
        "Rename named",
        "Delete named",
    ):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("combobox", name="Model")).to_be_visible()
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    expect(page.get_by_role("navigation", name="Chat sessions")).to_be_visible()
    expect(page.get_by_role("log", name="Conversation")).to_be_visible()


def test_send_stop_and_regenerate_work_from_the_keyboard(page: Page) -> None:
    pick_model(page, "slow")
    box = message_box(page)
    box.fill(" ".join(f"k{n}" for n in range(300)))
    box.press("Tab")
    send_button = page.get_by_role("button", name="Send")
    expect(send_button).to_be_focused()
    page.keyboard.press("Enter")
    # The Send button gives way to Stop, and Stop has the focus.
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_focused()
    reply = page.locator(".message.assistant")
    expect(reply_text(reply)).to_contain_text("k1")
    page.keyboard.press("Enter")
    expect(reply).not_to_have_class(STREAMING)
    expect(box).to_be_focused()

    regenerate = page.get_by_role("button", name="Regenerate reply")
    regenerate.focus()
    page.keyboard.press("Enter")
    # The reply (and its button) are hidden while it is answered again: Stop has the focus.
    expect(stop).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".message.assistant.streaming")).to_have_count(0)
    expect(box).to_be_focused()


def test_opening_renaming_and_deleting_chats_keeps_the_focus_in_the_list(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "first chat"))
    new_chat(page)
    wait_until_answered(send(page, "second chat"))
    older = page.locator(".session").filter(has_text="first chat")
    older.get_by_role("button", name="first chat", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#chat-title")).to_have_text("first chat")
    expect(older.get_by_role("button", name="first chat", exact=True)).to_be_focused()

    older.get_by_role("button", name="Rename first chat").focus()
    page.keyboard.press("Enter")
    title = page.get_by_role("textbox", name="Chat title")
    expect(title).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("renamed chat")
    page.keyboard.press("Enter")
    renamed = page.locator(".session").filter(has_text="renamed chat")
    expect(renamed.get_by_role("button", name="Rename renamed chat")).to_be_focused()

    page.keyboard.press("Tab")
    expect(renamed.get_by_role("button", name="Delete renamed chat")).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Delete")).to_be_visible()
    page.keyboard.press("Tab")  # Cancel has the focus first; Delete is next
    expect(dialog.get_by_role("button", name="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(renamed).to_have_count(0)
    assert focused(page) != "BODY"


def test_the_settings_open_save_and_close_from_the_keyboard(page: Page) -> None:
    toggle = page.get_by_role("button", name="Chat settings")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    system = page.get_by_label("System prompt")
    expect(system).to_be_focused()
    page.keyboard.type("Be brief.")
    page.keyboard.press("Tab")
    page.keyboard.type("0.5")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save settings")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    page.keyboard.press("Escape")
    expect(system).to_be_hidden()
    expect(toggle).to_be_focused()


def test_on_a_phone_the_closed_drawer_takes_no_focus_and_escape_closes_it(
    browser: Browser, gateway_url: str
) -> None:
    context = browser.new_context(base_url=gateway_url, viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        open_chat(page)
        from_the_top(page)
        # Tab order: the skip link, then the menu button: nothing of the drawer off screen.
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to message box")).to_be_focused()
        page.keyboard.press("Tab")
        menu = page.get_by_role("button", name="Show chats")
        expect(menu).to_be_focused()
        page.keyboard.press("Enter")
        expect(menu).to_have_attribute("aria-expanded", "true")
        expect(page.locator("#new-chat")).to_be_focused()
        # Open, the drawer keeps the focus: the chat behind it takes none.
        for _ in range(8):
            page.keyboard.press("Tab")
            assert page.evaluate(
                "document.getElementById('sidebar').contains(document.activeElement)"
            )
        page.keyboard.press("Escape")
        expect(menu).to_have_attribute("aria-expanded", "false")
        expect(menu).to_be_focused()
        expect(page.locator("#new-chat")).not_to_be_visible()
    finally:
        context.close()
