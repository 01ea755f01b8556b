"""Failures are shown in place, and model output can never run script in the page."""

from __future__ import annotations

from playwright.sync_api import Dialog, Page, expect

from tests.browser.chat_page import pick_model, reload, reply_text, send, wait_until_answered

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
    expect(body.locator("script, iframe, [href^='javascript' i]")).to_have_count(0)
    expect(body.locator("a")).to_have_count(2)


def test_an_upstream_failure_is_shown_in_place_of_the_reply(page: Page) -> None:
    pick_model(page, "broken")
    reply = send(page, "this upstream answers 500")
    wait_until_answered(reply)
    expect(reply.get_by_role("alert")).to_contain_text("Error 502")
    reload(page)
    expect(page.locator(".message.assistant").get_by_role("alert")).to_be_visible()


def test_a_rate_limit_is_shown_in_place_with_when_to_retry(page: Page) -> None:
    pick_model(page, "limited")
    reply = send(page, "this upstream answers 429")
    wait_until_answered(reply)
    expect(reply.locator(".rate-limited")).to_contain_text("Rate limited")
    expect(reply.locator(".rate-limited")).to_contain_text("Try again in 1 s")
