"""Talking to a model in the web chat: streaming, Markdown, history, models, stop, regenerate."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.chat_page import (
    STREAMING,
    message_box,
    pick_model,
    reload,
    reply_text,
    send,
    wait_until_answered,
)
from tests.polling import wait_until


def test_a_reply_streams_in_and_shows_reported_token_usage(page: Page) -> None:
    pick_model(page, "slow")
    words = " ".join(f"word{n}" for n in range(40))
    reply = send(page, words)
    # Part of the answer is on the page while the rest is still on its way.
    expect(reply_text(reply)).to_contain_text("word0")
    expect(reply).to_have_class(STREAMING)
    expect(reply_text(reply)).not_to_contain_text("word39")
    wait_until_answered(reply)
    expect(reply_text(reply)).to_have_text(words)
    expect(reply.locator(".origin")).to_have_text("openai · echo")
    expect(reply.locator(".usage")).to_contain_text("tokens · reported")


def test_enter_sends_and_shift_enter_starts_a_new_line(page: Page) -> None:
    pick_model(page, "mock/echo")
    box = message_box(page)
    box.press_sequentially("first line")
    box.press("Shift+Enter")
    box.press_sequentially("second line")
    expect(box).to_have_value("first line\nsecond line")
    box.press("Enter")
    expect(page.locator(".message.user")).to_have_text("first line\nsecond line")
    expect(box).to_have_value("")


def test_a_code_block_in_a_reply_is_highlighted_and_can_be_copied(page: Page) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    pick_model(page, "mock/echo")
    reply = send(page, "Here:\n\n```python\ndef add(a, b):\n    return a + b\n```\n")
    wait_until_answered(reply)
    code = reply.locator("pre code.hljs")
    expect(code).to_have_text("def add(a, b):\n    return a + b\n")
    expect(code.locator(".hljs-keyword").first).to_have_text("def")
    reply.get_by_role("button", name="Copy code").click()
    expect(reply.get_by_role("button", name="Copy code")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == "def add(a, b):\n    return a + b\n"


UNTAGGED_LOG = (
    "2024-01-01 12:00:00 INFO server started on port 8080\n"
    "2024-01-01 12:00:01 ERROR failed: connection refused {retry: 3}\n"
    "$ ls -la /tmp\n"
)
UNTAGGED_TEXT = "Hello world. This is just some plain text; nothing to see.\nbody { color: red; }\n"


def test_a_code_block_that_names_no_language_is_shown_plain(page: Page) -> None:
    # highlight.js guessed these as YAML and CSS and coloured them so: a block whose
    # fence names no language (or one highlight.js does not know) is left as text.
    pick_model(page, "mock/echo")
    reply = send(
        page,
        f"Log:\n\n```\n{UNTAGGED_LOG}```\n\nText:\n\n```\n{UNTAGGED_TEXT}```\n\n"
        "Unknown:\n\n```no-such-language\nkey: value\n```\n\n"
        "Tagged:\n\n```yaml\nkey: value\n```\n",
    )
    wait_until_answered(reply)
    blocks = reply.locator("pre code.hljs")
    expect(blocks).to_have_count(4)
    expect(blocks.nth(0)).to_have_text(UNTAGGED_LOG)
    expect(blocks.nth(1)).to_have_text(UNTAGGED_TEXT)
    for plain in range(3):
        expect(blocks.nth(plain).locator("span")).to_have_count(0)
        expect(blocks.nth(plain)).not_to_have_attribute("data-language", re.compile(".*"))
    expect(blocks.nth(3)).to_have_attribute("data-language", "yaml")
    expect(blocks.nth(3).locator(".hljs-attr")).to_have_text("key:")


def test_a_replys_headings_sit_below_the_pages_own(page: Page) -> None:
    # "# Title" in a reply was a 2em h1, bigger than the chat's title and an h1 in the
    # page's outline: a reply's headings start at h3, at a reply's size.
    pick_model(page, "mock/echo")
    reply = send(page, "# Big title\n\n## Part\n\ntext\n\n###### Deepest")
    wait_until_answered(reply)
    expect(reply.locator("h1, h2")).to_have_count(0)
    expect(reply.locator("h3")).to_have_text("Big title")
    expect(reply.locator("h4")).to_have_text("Part")
    expect(reply.locator("h6")).to_have_text("Deepest")
    expect(page.locator("h1")).to_have_count(1)  # the chat's title alone
    sizes = page.evaluate(
        """() => [document.querySelector(".chat-title"), document.querySelector(".markdown h3"),
                  document.querySelector(".markdown p")]
                 .map((node) => parseFloat(getComputedStyle(node).fontSize))"""
    )
    title, heading, text = sizes
    assert text < heading <= 1.25 * text and heading <= 1.25 * title, sizes


def test_the_conversation_is_still_there_after_a_refresh(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "remember **this** please"))
    reload(page)
    expect(page.locator(".message.user")).to_have_text(["remember **this** please"])
    expect(page.locator(".message.assistant .message-body strong")).to_have_text("this")
    expect(page.locator(".message.assistant .usage")).to_contain_text("reported")
    current = page.locator(".session.current")
    expect(current).to_have_text("remember **this** please")
    expect(page.locator("#chat-title")).to_have_text("remember **this** please")


def test_switching_the_model_answers_with_the_new_one_and_is_remembered(page: Page) -> None:
    pick_model(page, "mock/echo")
    first = send(page, "who answers?")
    wait_until_answered(first)
    expect(first.locator(".origin")).to_have_text("mock · echo")
    pick_model(page, "mock/mock-1")
    second = send(page, "and now?")
    wait_until_answered(second)
    expect(second.locator(".origin")).to_have_text("mock · mock-1")
    expect(reply_text(second)).not_to_have_text("and now?")
    reload(page)
    expect(page.get_by_label("Model", exact=True)).to_have_value("mock/mock-1")


def test_stop_ends_a_reply_mid_stream_and_keeps_what_arrived(page: Page) -> None:
    pick_model(page, "slow")
    words = " ".join(f"w{n}" for n in range(400))
    reply = send(page, words)
    expect(reply_text(reply)).to_contain_text("w1")
    page.get_by_role("button", name="Stop").click()
    expect(reply).to_have_class(re.compile(r"\bstopped\b"))
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(reply).not_to_have_class(STREAMING)
    assert "w399" not in reply_text(reply).inner_text()
    # The gateway saves the part that arrived, marked stopped, once it sees the page hang
    # up: a refresh shows it as soon as it is saved.
    saved = page.locator(".message.assistant")

    def saved_after_a_refresh() -> bool:
        reload(page)
        return saved.count() == 1

    wait_until(saved_after_a_refresh)
    expect(saved).to_have_class(re.compile(r"\bstopped\b"))
    # With the usage the gateway recorded for the call: estimated, none was reported.
    expect(saved.locator(".usage")).to_contain_text("tokens · estimated")
    expect(reply_text(saved)).to_contain_text("w0")
    assert "w399" not in reply_text(saved).inner_text()


def test_regenerate_replaces_the_last_reply(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "say it again"))
    first_id = page.locator(".message.assistant").get_attribute("data-message-id")
    page.get_by_role("button", name="Regenerate reply").click()
    replies = page.locator(".message.assistant")
    expect(replies).to_have_count(1)
    expect(replies).not_to_have_attribute("data-message-id", first_id or "")
    wait_until_answered(replies)
    expect(reply_text(replies)).to_have_text("say it again")
    reload(page)
    expect(page.locator(".message.assistant")).to_have_count(1)
    expect(page.locator(".message.user")).to_have_count(1)


def test_a_regenerate_that_fails_keeps_the_reply_it_would_have_replaced(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "keep this answer"))
    pick_model(page, "broken")  # its upstream answers 500
    page.get_by_role("button", name="Regenerate reply").click()
    replies = page.locator(".message.assistant")
    expect(replies).to_have_count(2)
    expect(replies.last.get_by_role("alert")).to_contain_text("Error 502")
    expect(reply_text(replies.first)).to_have_text("keep this answer")
    expect(replies.first).to_be_visible()
    reload(page)  # the gateway kept both, in that order
    expect(reply_text(replies.first)).to_have_text("keep this answer")
    expect(replies.last.get_by_role("alert")).to_contain_text("Error 502")
    # One that ends well replaces them both.
    pick_model(page, "mock/echo")
    replies.last.get_by_role("button", name="Regenerate reply").click()
    expect(replies).to_have_count(1)
    wait_until_answered(replies)
    expect(reply_text(replies)).to_have_text("keep this answer")
    expect(replies.get_by_role("alert")).to_have_count(0)
    reload(page)
    expect(replies).to_have_count(1)
    expect(replies.get_by_role("alert")).to_have_count(0)


POEM = "Roses are red,\nViolets are blue,\n  indented, as typed\n\n1 Main St\nSpringfield"


def test_single_line_breaks_are_kept_in_a_reply_and_in_the_message_sent(page: Page) -> None:
    pick_model(page, "mock/echo")
    code = "```python\ndef f():\n    return 1\n```"
    table = "| x | y |\n|---|---|\n| 1 | 2 |"
    reply = send(page, f"{POEM}\n\n{code}\n\n- one\n- two\n\n{table}")
    wait_until_answered(reply)
    # Each line of the poem and of the address is a line of its own paragraph.
    paragraphs = reply_text(reply).locator("p")
    expect(paragraphs).to_have_count(2)
    expect(paragraphs.first.locator("br")).to_have_count(2)
    assert paragraphs.first.inner_text().splitlines() == [
        "Roses are red,",
        "Violets are blue,",
        "indented, as typed",
    ]
    assert paragraphs.nth(1).inner_text().splitlines() == ["1 Main St", "Springfield"]
    # Code, lists and tables keep their own layout: no <br> inside them.
    expect(reply_text(reply).locator("pre code")).to_have_text("def f():\n    return 1\n")
    expect(reply_text(reply).locator("pre br, li br, table br")).to_have_count(0)
    expect(reply_text(reply).locator("li")).to_have_text(["one", "two"])
    expect(reply_text(reply).locator("td")).to_have_text(["1", "2"])
    # The message sent is shown as typed: its line breaks and leading spaces kept.
    sent = page.locator(".message.user .message-body")
    assert sent.inner_text().startswith(POEM)
    reload(page)
    expect(page.locator(".message.assistant .message-body p").first.locator("br")).to_have_count(2)


def test_a_streaming_reply_draws_again_only_its_last_block(page: Page) -> None:
    # Paragraphs of two long words, paced by the slow upstream: many renders, each one
    # after the reply has grown. A render that parsed and drew the whole reply again each
    # time made a long reply slower with every word (and the page with it).
    pick_model(page, "slow")
    paragraphs = [f"paragraph-{n:03d}-starts-here and-ends-here-{n:03d}" for n in range(200)]
    reply = send(page, "\n\n".join(paragraphs))
    expect(reply_text(reply)).to_contain_text("paragraph-003")
    first = reply_text(reply).locator("p").first.element_handle()
    expect(reply_text(reply)).to_contain_text("paragraph-030")
    # The first paragraph is the node drawn when it arrived, never replaced since.
    assert first.evaluate("p => p.isConnected && p.closest('.message').matches('.streaming')")
    renders = page.evaluate(
        "performance.getEntriesByName('modelway:markdown').map(mark => mark.detail.characters)"
    )
    shown = len(reply_text(reply).inner_text())
    assert len(renders) >= 2 and shown > 1000
    # Each render parsed what follows the settled paragraphs: about one paragraph, never
    # the whole reply again.
    assert max(renders) < 200, renders
    page.get_by_role("button", name="Stop").click()
    expect(reply).not_to_have_class(STREAMING)
    # Ended, the reply is drawn whole once: the same paragraphs, one <p> each.
    count = reply_text(reply).locator("p").count()
    assert 30 < count < 200
    expect(reply_text(reply).locator("p").first).to_have_text(paragraphs[0])
