"""The sidebar's sessions and each session's settings, kept by the gateway's store."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.chat_page import new_chat, pick_model, reload, send, wait_until_answered


def test_a_session_can_be_created_renamed_and_deleted(page: Page) -> None:
    current = page.locator(".session.current")
    expect(current).to_have_text("New chat")
    session_id = current.get_attribute("data-session-id")

    current.get_by_role("button", name="Rename New chat").click()
    title = page.get_by_role("textbox", name="Chat title")
    title.fill("Trip planning")
    title.press("Enter")
    expect(current).to_have_text("Trip planning")
    expect(page.locator("#chat-title")).to_have_text("Trip planning")

    reload(page)
    renamed = page.locator(f'.session[data-session-id="{session_id}"]')
    expect(renamed).to_have_text("Trip planning")

    # A rename given up with Escape leaves the pencil working.
    for _ in range(2):
        renamed.get_by_role("button", name="Rename Trip planning").click()
        page.get_by_role("textbox", name="Chat title").press("Escape")
        expect(page.get_by_role("textbox", name="Chat title")).to_have_count(0)
        expect(renamed).to_have_text("Trip planning")

    renamed.get_by_role("button", name="Delete Trip planning").click()
    confirm = page.get_by_role("dialog")
    expect(confirm).to_contain_text("Delete “Trip planning”")
    confirm.get_by_role("button", name="Delete").click()
    expect(renamed).to_have_count(0)
    reload(page)
    expect(page.locator(f'.session[data-session-id="{session_id}"]')).to_have_count(0)


def test_choosing_another_session_shows_its_own_history(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "first conversation"))
    first = page.locator(".session.current").get_attribute("data-session-id")
    new_chat(page)
    wait_until_answered(send(page, "second conversation"))
    page.locator(f'.session[data-session-id="{first}"] .session-open').click()
    expect(page.locator(".message.user")).to_have_text(["first conversation"])


def test_system_prompt_temperature_and_max_tokens_are_kept_per_session(page: Page) -> None:
    page.get_by_role("button", name="Chat settings").click()
    page.get_by_label("System prompt").fill("Answer like a pirate.")
    page.get_by_label("Temperature").fill("0.4")
    page.get_by_label("Max tokens").fill("256")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-status")).to_have_text("Saved")
    # A value the gateway refuses is not "Saved": the panel says why.
    page.get_by_label("Max tokens").fill("99999999999999999999")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-status")).to_contain_text("Not saved: max_tokens")
    page.get_by_label("Max tokens").fill("256")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-status")).to_have_text("Saved")
    # The settings travel with the request and the model still answers.
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "ahoy"))
    session_id = page.locator(".session.current").get_attribute("data-session-id")

    new_chat(page)
    expect(page.get_by_label("System prompt")).to_have_value("")
    expect(page.get_by_label("Max tokens")).to_have_value("")

    page.locator(f'.session[data-session-id="{session_id}"] .session-open').click()
    expect(page.get_by_label("System prompt")).to_have_value("Answer like a pirate.")
    reload(page)
    page.get_by_role("button", name="Chat settings").click()
    expect(page.get_by_label("System prompt")).to_have_value("Answer like a pirate.")
    expect(page.get_by_label("Temperature")).to_have_value("0.4")
    expect(page.get_by_label("Max tokens")).to_have_value("256")


def test_settings_typed_for_a_new_chat_but_not_saved_are_used_by_its_first_message(
    page: Page,
) -> None:
    # The page fixture made the chat with "New chat"; nobody pressed Save settings.
    page.get_by_role("button", name="Chat settings").click()
    page.get_by_label("System prompt").fill("Answer like a pirate.")
    page.get_by_label("Max tokens").fill("64")
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "ahoy"))
    session_id = page.locator(".session.current").get_attribute("data-session-id")
    session = page.request.get(f"/chat/api/sessions/{session_id}").json()["session"]
    assert (session["system"], session["max_tokens"]) == ("Answer like a pirate.", 64)
    expect(page.locator("#settings-status")).to_have_text("Saved")
    reload(page)
    expect(page.get_by_label("System prompt")).to_have_value("Answer like a pirate.")


def test_new_chat_from_an_empty_chat_with_a_name_of_its_own_starts_another(page: Page) -> None:
    named = page.locator(".session.current")
    named.get_by_role("button", name="Rename New chat").click()
    page.get_by_role("textbox", name="Chat title").fill("Kept for later")
    page.get_by_role("textbox", name="Chat title").press("Enter")
    expect(named).to_have_text("Kept for later")
    # Still empty, but not an untouched new chat: a new conversation must not land in it.
    new_chat(page)
    expect(page.locator("#chat-title")).to_have_text("New chat")
    expect(page.locator(".session").filter(has_text="Kept for later")).to_have_count(1)


def test_a_chat_address_put_in_the_address_bar_opens_that_chat(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "the first chat"))
    first = page.locator(".session.current").get_attribute("data-session-id")
    new_chat(page)
    wait_until_answered(send(page, "the second chat"))
    # Same page, another address: only the part after # changes, and the page follows.
    page.goto(f"/#{first}")
    expect(page.locator("#chat-title")).to_have_text("the first chat")
    expect(page.locator(".message.user")).to_have_text(["the first chat"])
