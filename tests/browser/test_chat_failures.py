"""Failures are shown in place, and model output can never run script in the page."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.browser.chat_page import (
    SAVED_ID,
    STREAMING,
    message_box,
    pick_model,
    reload,
    reply_text,
    send,
    wait_until_answered,
)

#: Model output that would run script if it reached the page as HTML.
PAYLOADS = "\n\n".join(
    [
        "<script>window.__pwned = 'script'; alert('script')</script>",
        "<img src=x onerror=\"window.__pwned = 'img'; alert('img')\">",
        "[a javascript: link](javascript:alert('link'))",
        '<a href="javascript:alert(\'anchor\')" id="bad-anchor">an anchor</a>',
        '<svg onload="alert(\'svg\')"><circle r="4"/></svg>',
        "<iframe src=\"javascript:alert('frame')\"></iframe>",
        "<details open ontoggle=\"alert('details')\"><summary>details</summary></details>",
    ]
)


def test_script_in_model_output_stays_inert(page: Page) -> None:
    dialogs: list[str] = []
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    pick_model(page, "mock/echo")  # echoes the message back as model output
    reply = send(page, PAYLOADS)
    wait_until_answered(reply)
    expect(reply_text(reply)).to_contain_text("an anchor")
    for link in reply.locator("a").all():
        link.click(modifiers=["Alt"])  # no navigation away, but any handler would run
    reload(page)  # the stored reply is rendered again from history
    wait_until_answered(page.locator(".message.assistant"))

    assert dialogs == []
    assert page.evaluate("window.__pwned") is None
    handlers = page.evaluate(
        """Array.from(document.querySelectorAll('*')).flatMap(node =>
             Array.from(node.attributes).filter(a => a.name.startsWith('on'))
               .map(a => node.tagName + ' ' + a.name))"""
    )
    assert handlers == []
    body = page.locator(".message.assistant .message-body")
    expect(body.locator("script, iframe, img, svg, details, [href^='javascript' i]")).to_have_count(
        0
    )
    # HTML in a reply is shown as its text; Markdown's own link is a link (its
    # javascript: target dropped).
    expect(body).to_contain_text("<img src=x onerror=")
    expect(body.locator("a")).to_have_count(1)
    # Not even a blocked handler: no CSP violation is reported while rendering.
    assert console_errors == []


def test_an_upstream_failure_is_shown_in_place_of_the_reply(page: Page) -> None:
    pick_model(page, "broken")
    reply = send(page, "this upstream answers 500")
    wait_until_answered(reply)
    expect(reply.get_by_role("alert")).to_contain_text("Error 502")
    # No words arrived: there is nothing to copy, and no button offers to.
    expect(reply.get_by_role("button", name="Copy reply")).to_be_hidden()
    reload(page)
    # From history, as it was shown live: with its status.
    expect(page.locator(".message.assistant").get_by_role("alert")).to_contain_text("Error 502")
    expect(page.get_by_role("button", name="Copy reply")).to_be_hidden()


def test_a_rate_limit_is_shown_in_place_with_when_to_retry(page: Page) -> None:
    pick_model(page, "limited")
    reply = send(page, "this upstream answers 429")
    wait_until_answered(reply)
    shown = reply.locator(".rate-limited")
    expect(shown).to_contain_text("Rate limited")
    expect(shown).to_contain_text("Try again in 1 s")
    # The wait is said once, in our words, whatever the provider's message said of it.
    assert shown.inner_text().lower().count("try again") == 1
    assert ".." not in shown.inner_text()
    reload(page)
    expect(page.locator(".message.assistant .rate-limited")).to_contain_text("Rate limited")


@pytest.mark.parametrize(
    ("message", "retry_after", "shown"),
    [
        (
            "The daily budget of $1.00 is used up (spent $1.02); it renews tomorrow at 00:00 UTC.",
            35509,
            "The daily budget of $1.00 is used up (spent $1.02); it renews tomorrow at 00:00 UTC.",
        ),
        (
            "Rate limit reached on requests per minute: limit 1, used 1, requested 1. "
            "Please try again in 59.3s.",
            59.3,
            "Rate limited: requests per minute: limit 1, used 1, requested 1. Try again in 60 s.",
        ),
        ("Rate limit reached on tokens per minute.", 1500, "Try again in 25 min."),
        # Every form the gateway's own waits take (limits.format_reset), and a provider's.
        (
            "Rate limit reached on requests per minute: limit 1. Please try again in 1m0.244s.",
            60.244,
            "Rate limited: requests per minute: limit 1. Try again in 61 s.",
        ),
        (
            "Rate limit reached on requests per minute: limit 9. Please try again in 250ms.",
            0.25,
            "Rate limited: requests per minute: limit 9. Try again in 1 s.",
        ),
        (
            "Rate limit reached on tokens per minute: limit 5. Please try again in 6m0s.",
            360,
            "Rate limited: tokens per minute: limit 5. Try again in 6 min.",
        ),
        (
            "Rate limit reached on tokens per day. Please try again in 1h2m3.5s.",
            3723.5,
            "Rate limited: tokens per day. Try again in 63 min.",
        ),
        ("Too many requests, please try again in 20 seconds.", 20, "Try again in 20 s."),
    ],
    ids=[
        "budget",
        "rpm",
        "long-wait",
        "minutes",
        "milliseconds",
        "whole-minutes",
        "hours",
        "words",
    ],
)
def test_a_refusal_says_when_in_words_a_person_reads(
    page: Page, message: str, retry_after: float, shown: str
) -> None:
    # A spent budget says when it renews, not "Rate limited ... Try again in 35509 s".
    event = {"type": "rate_limited", "message": message, "retry_after": retry_after}
    done = {"type": "done", "message_id": None}
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in (event, done))
    page.route(
        "**/chat/api/sessions/*/messages",
        lambda route: route.fulfill(status=200, body=body, content_type="text/event-stream"),
    )
    pick_model(page, "mock/echo")
    reply = send(page, "refused")
    expect(reply.locator(".rate-limited")).to_contain_text(shown)
    said = reply.locator(".rate-limited").inner_text()
    assert said.count("Rate limited") <= 1
    assert said.lower().count("try again") <= 1, said


def test_a_message_refused_before_it_was_kept_goes_back_in_the_box(page: Page) -> None:
    """A model the gateway cannot route (gone since the page loaded): it keeps nothing of
    the exchange, so the page says so, offers no regenerate, and gives the text back."""
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "kept"))
    _pick_a_model_that_cannot_be_routed(page)
    reply = send(page, "this one is refused")
    expect(reply).not_to_have_class(STREAMING)
    expect(reply).not_to_have_attribute("data-message-id", SAVED_ID)
    expect(reply.get_by_role("alert")).to_contain_text("groq")
    expect(reply).to_contain_text("Not saved")
    expect(message_box(page)).to_have_value("this one is refused")
    expect(reply.get_by_role("button", name="Regenerate reply")).to_be_hidden()
    reload(page)
    expect(page.locator(".message.user")).to_have_count(1)
    expect(page.locator(".message.user")).to_contain_text("kept")
    # Answering it again with that model is refused too: the reply it had is kept.
    kept_reply = page.locator(".message.assistant").last
    kept_text = reply_text(kept_reply).inner_text()
    _pick_a_model_that_cannot_be_routed(page)
    kept_reply.get_by_role("button", name="Regenerate reply").click()
    again = page.locator(".message.assistant").last
    expect(again).to_contain_text("Not saved: the reply before it is kept")
    reload(page)
    expect(reply_text(page.locator(".message.assistant").last)).to_have_text(kept_text)


def test_a_chat_made_for_a_refused_first_message_does_not_stay_behind(page: Page) -> None:
    """With no chat open (a first visit, or the open one deleted) the first message makes
    one; when the gateway refuses that message, the chat goes again rather than stay in
    the list as an empty "New chat" — and one the next message makes is kept."""
    current = page.locator(".session.current")
    current.get_by_role("button", name="Delete New chat").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(current).to_have_count(0)
    before = _session_ids(page)
    _pick_a_model_that_cannot_be_routed(page)
    reply = send(page, "refused before a chat held anything")
    expect(reply).to_contain_text("Not saved: your message is back in the box")
    expect(message_box(page)).to_have_value("refused before a chat held anything")
    expect(current).to_have_count(0)
    expect(page.locator("#chat-title")).to_have_text("New chat")
    assert _session_ids(page) == before
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "answered"))
    made = _session_ids(page) - before
    assert len(made) == 1
    expect(current).to_have_attribute("data-session-id", made.pop())
    expect(current).to_have_text("answered")


def _session_ids(page: Page) -> set[str]:
    """The ids of the chats the gateway keeps, read from its API."""
    listed = page.request.get("/chat/api/sessions")
    assert listed.ok
    return {session["id"] for session in listed.json()["sessions"]}


def _pick_a_model_that_cannot_be_routed(page: Page) -> None:
    """A provider this gateway has no key for (as a model gone since the page loaded)."""
    page.evaluate(
        """(name) => { const pick = document.getElementById('model-picker');
                   if (![...pick.options].some((o) => o.value === name))
                     pick.add(new Option(name, name));
                   pick.value = name; pick.dispatchEvent(new Event('change')); }""",
        "groq/gone-model",
    )


def test_a_first_message_with_the_gateway_down_goes_back_in_the_box(page: Page) -> None:
    """No chat open and the gateway unreachable: the chat cannot even be made, so
    nothing is sent and the text is not lost."""
    current = page.locator(".session.current")
    current.get_by_role("button", name="Delete New chat").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(current).to_have_count(0)
    pick_model(page, "mock/echo")
    page.route("**/chat/api/sessions", lambda route: route.abort())
    box = message_box(page)
    box.fill("typed with no chat open")
    box.press("Enter")
    notice = page.locator("#notice")
    expect(notice).to_contain_text("The gateway cannot be reached")
    expect(box).to_have_value("typed with no chat open")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.locator(".message")).to_have_count(0)


def test_a_message_the_gateway_never_got_goes_back_in_the_box(page: Page) -> None:
    """The gateway unreachable when Enter is pressed (the request fails on the network):
    nothing was kept, so it is as any refusal — no Regenerate, which would answer the
    message before it — and not a lost message."""
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "kept"))
    page.route("**/chat/api/sessions/*/messages", lambda route: route.abort())
    reply = send(page, "typed while the gateway was down")
    expect(reply.get_by_role("alert")).to_be_visible()
    expect(reply).to_contain_text("Not saved: your message is back in the box")
    expect(message_box(page)).to_have_value("typed while the gateway was down")
    expect(reply.get_by_role("button", name="Regenerate reply")).to_be_hidden()
    page.unroute("**/chat/api/sessions/*/messages")
    reload(page)
    expect(page.locator(".message.user")).to_have_text(["kept"])


#: A one-pixel PNG, inline: an image the page's CSP allows.
DOT = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_an_image_from_elsewhere_is_a_link_not_a_blocked_load(page: Page) -> None:
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    pick_model(page, "mock/echo")
    reply = send(
        page,
        "![a remote picture](http://tracker.invalid/pixel.png)\n\n"
        "[![linked picture](https://tracker.invalid/b.png)](https://example.invalid/)\n\n"
        f"![an inline dot]({DOT})",
    )
    wait_until_answered(reply)
    body = reply_text(reply)
    link = body.get_by_role("link", name="a remote picture")
    expect(link).to_have_attribute("href", "http://tracker.invalid/pixel.png")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(body.get_by_role("link", name="linked picture")).to_have_attribute(
        "href", "https://example.invalid/"
    )
    expect(body.locator("img")).to_have_count(1)
    expect(body.locator("img")).to_have_attribute("alt", "an inline dot")
    reload(page)  # rendered again from history, the same way
    expect(page.locator(".message.assistant img")).to_have_count(1)
    assert not any("tracker.invalid" in url for url in requested)
    assert console_errors == []
