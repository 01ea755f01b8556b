"""What the tests do on the chat page, named for what a user does."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

STREAMING = re.compile(r"\bstreaming\b")
SAVED_ID = re.compile(r"^[0-9a-f]{32}$")


def open_chat(page: Page, path: str = "/") -> None:
    """Load the chat and wait until it has its sessions and models."""
    page.goto(path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def reload(page: Page) -> None:
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def new_chat(page: Page) -> None:
    """Start a new chat and wait until it is the one shown."""
    page.locator("#new-chat").click()
    expect(page.locator(".session.current")).to_have_text("New chat")
    expect(page.locator(".message")).to_have_count(0)


def pick_model(page: Page, model: str) -> None:
    page.get_by_label("Model", exact=True).select_option(model)


def message_box(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Message", exact=True)


def send(page: Page, text: str) -> Locator:
    """Put ``text`` in the message box and press Enter; the reply that starts."""
    before = page.locator(".message.assistant").count()
    box = message_box(page)
    box.fill(text)
    box.press("Enter")
    reply = page.locator(".message.assistant").nth(before)
    expect(reply).to_be_attached()
    return reply


def wait_until_answered(reply: Locator) -> None:
    """The reply's stream ended and the gateway saved it."""
    expect(reply).not_to_have_class(STREAMING)
    expect(reply).to_have_attribute("data-message-id", SAVED_ID)


def reply_text(reply: Locator) -> Locator:
    return reply.locator(".message-body")
