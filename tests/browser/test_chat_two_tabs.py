"""One chat open in two tabs: each shows what the other did, and neither garbles the
history (messages saved out of order, a reply deleted by the other tab's regenerate)."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.chat_page import (
    message_box,
    new_chat,
    open_chat,
    pick_model,
    send,
    wait_until_answered,
)
from tests.polling import wait_until


def second_tab(page: Page) -> Page:
    """The chat ``page`` shows, opened in another tab of the same browser."""
    other = page.context.new_page()
    open_chat(other, f"/#{chat_id(page)}")
    return other


def chat_id(page: Page) -> str:
    return str(page.evaluate("decodeURIComponent(location.hash.slice(1))"))


def saved(page: Page) -> list[tuple[str, str]]:
    """The chat's history as the gateway keeps it: (role, content), oldest first."""
    messages: list[dict[str, Any]] = page.request.get(f"/chat/api/sessions/{chat_id(page)}").json()[
        "messages"
    ]
    return [(message["role"], message["content"]) for message in messages]


def shown(page: Page) -> list[str]:
    """The messages the page shows, as text."""
    return [text.strip() for text in page.locator(".message .message-body").all_inner_texts()]


def sent_elsewhere(page: Page, content: str) -> None:
    """Another tab (here, another client of the API) sends ``content`` after the last
    message the chat has, and its reply is saved."""
    messages = page.request.get(f"/chat/api/sessions/{chat_id(page)}").json()["messages"]
    answer = page.request.post(
        f"/chat/api/sessions/{chat_id(page)}/messages",
        data={"content": content, "model": "mock/echo", "after": messages[-1]["id"]},
    )
    assert answer.ok and '"type":"done"' in answer.text()


def regain_focus(page: Page) -> None:
    page.evaluate("window.dispatchEvent(new Event('focus'))")


def shown_once_saved(page: Page, replies: int) -> None:
    """Once the gateway keeps ``replies`` replies in the chat (a stopped one is saved when
    the gateway sees its tab hang up), the page brought back shows them."""
    wait_until(lambda: [role for role, _ in saved(page)].count("assistant") == replies)
    regain_focus(page)
    expect(page.locator(".message.assistant")).to_have_count(replies)


def test_a_tab_brought_back_shows_what_another_tab_sent(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "first"))
    other = second_tab(page)
    wait_until_answered(send(other, "from the other tab"))
    regain_focus(page)
    expect(page.locator(".message.user")).to_have_text(["first", "from the other tab"])
    expect(page.locator(".message.assistant")).to_have_count(2)


def test_a_message_sent_from_a_stale_tab_is_refused_and_put_back(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "first"))
    sent_elsewhere(page, "from the other tab")
    # This tab still shows only "first": its message would follow a history it has not
    # seen, so the gateway refuses it and the page shows the chat as it is now.
    box = message_box(page)
    box.fill("from this tab")
    box.press("Enter")
    notice = page.get_by_role("status").filter(has_text="changed in another tab")
    expect(notice).to_have_text(
        "Not sent: this chat changed in another tab or window. It now shows the latest"
        " messages. Your message is back in the box."
    )
    expect(page.locator(".message.user")).to_have_text(["first", "from the other tab"])
    expect(box).to_have_value("from this tab")
    assert saved(page) == [
        ("user", "first"),
        ("assistant", "first"),
        ("user", "from the other tab"),
        ("assistant", "from the other tab"),
    ]
    # Sent again, it follows what the other tab said.
    box.press("Enter")
    expect(page.locator(".message.user")).to_have_count(3)
    wait_until_answered(page.locator(".message.assistant").last)
    assert saved(page)[4:] == [("user", "from this tab"), ("assistant", "from this tab")]
    expect(notice).to_be_hidden()


def test_a_stale_tab_cannot_regenerate_away_the_other_tabs_reply(page: Page) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "first"))
    sent_elsewhere(page, "from the other tab")
    # This tab's Regenerate would answer "first" again in place of... the other tab's
    # question and reply, which it has never shown.
    page.get_by_role("button", name="Regenerate reply").click()
    expect(page.get_by_role("status").filter(has_text="Not regenerated")).to_contain_text(
        "this chat changed in another tab or window"
    )
    expect(page.locator(".message.user")).to_have_text(["first", "from the other tab"])
    assert saved(page)[2:] == [("user", "from the other tab"), ("assistant", "from the other tab")]


def test_while_another_tab_is_answered_a_message_waits_for_that_reply(
    page: Page, context: BrowserContext
) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "first"))
    other = second_tab(page)
    pick_model(other, "slow")
    streaming = send(other, " ".join(f"slowly{n}" for n in range(300)))
    expect(streaming.locator(".message-body")).to_contain_text("slowly1")
    # Back in this tab: it shows the other tab's question, its reply not saved yet (and
    # offers no Regenerate: the reply above it does not answer it).
    regain_focus(page)
    expect(page.locator(".message.user")).to_have_count(2)
    expect(page.get_by_role("button", name="Regenerate reply")).to_be_hidden()
    box = message_box(page)
    box.fill("in between")
    box.press("Enter")
    expect(page.get_by_role("status").filter(has_text="still answering")).to_have_text(
        "Not sent: this chat is still answering a message sent from another tab or window."
        " Wait for that reply, then try again. Your message is back in the box."
    )
    expect(box).to_have_value("in between")
    other.get_by_role("button", name="Stop").click()
    expect(streaming).to_have_class(re.compile(r"\bstopped\b"))
    # Back in this tab, the stopped reply is shown in its place, and the message goes
    # after it.
    shown_once_saved(page, 2)
    box.press("Enter")
    expect(page.locator(".message.user")).to_have_count(3)
    wait_until_answered(page.locator(".message.assistant").last)
    roles = [role for role, _ in saved(page)]
    assert roles == ["user", "assistant"] * 3
    assert saved(page)[4:] == [("user", "in between"), ("assistant", "in between")]
    assert shown(page)[-2:] == ["in between", "in between"]


def test_sending_from_two_tabs_keeps_each_question_before_its_reply(page: Page) -> None:
    pick_model(page, "slow")
    wait_until_answered(send(page, "first"))
    other = second_tab(page)
    # Both tabs send, one after the other, without looking at the other.
    streaming = send(page, " ".join(f"a{n}" for n in range(20)))
    expect(streaming.locator(".message-body")).to_contain_text("a1")
    box = message_box(other)
    box.fill("b0 b1 b2")
    box.press("Enter")
    expect(other.get_by_role("status").filter(has_text="Not sent")).to_be_visible()
    wait_until_answered(page.locator(".message.assistant").last)
    expect(other.locator(".message.assistant.streaming")).to_have_count(0)
    history = saved(page)
    assert [role for role, _ in history] == ["user", "assistant"] * (len(history) // 2)
    assert history[2][1] == history[3][1]  # the question and its own reply, together


#: WCAG's contrast ratio of an element's text on its own background (both opaque here).
CONTRAST = """(element) => {
  const style = getComputedStyle(element);
  const luminance = (color) => {
    const [r, g, b] = color.match(/[\\d.]+/g).slice(0, 3).map((c) => {
      const v = Number(c) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [light, dark] = [luminance(style.color), luminance(style.backgroundColor)].sort(
    (a, b) => b - a);
  return (light + 0.05) / (dark + 0.05);
}"""


def notice_colours(page: Page, notice: Locator) -> dict[str, tuple[str, float]]:
    """The notice's background and its text's contrast ratio, in light and in dark mode."""
    colours = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
        expect(page.locator("html")).to_have_attribute("data-theme", scheme)
        background = notice.evaluate("element => getComputedStyle(element).backgroundColor")
        colours[scheme] = (background, float(notice.evaluate(CONTRAST)))
    return colours


def test_a_notice_of_what_happened_is_a_status_and_one_of_a_failure_an_alert(page: Page) -> None:
    # A message refused because another tab changed the chat lost nothing: the page says
    # so as news (role status, not red), and a failure as an alert, in red.
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "first"))
    sent_elsewhere(page, "from the other tab")
    box = message_box(page)
    box.fill("from this tab")
    box.press("Enter")
    info = page.get_by_role("status").filter(has_text="changed in another tab")
    expect(info).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="changed in another tab")).to_have_count(0)
    info_colours = notice_colours(page, info)

    # A model picked while the gateway cannot be reached is not saved: that is an error.
    page.route(
        "**/chat/api/sessions/*",
        lambda route: route.abort() if route.request.method == "PATCH" else route.fallback(),
    )
    pick_model(page, "mock/mock-1")
    error = page.get_by_role("alert").filter(has_text="The gateway cannot be reached")
    expect(error).to_be_visible()
    expect(info).to_have_count(0)  # one notice at a time: the newest
    error_colours = notice_colours(page, error)

    for scheme in ("light", "dark"):
        assert info_colours[scheme][1] >= 4.5, (scheme, info_colours)
        assert error_colours[scheme][1] >= 4.5, (scheme, error_colours)
        assert info_colours[scheme][0] != error_colours[scheme][0], scheme


def test_a_tab_brought_back_still_says_its_settings_were_saved(page: Page) -> None:
    # The refresh a tab does when it is brought back showed the settings again and, with
    # them, wiped the panel's "Saved".
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "first"))
    page.get_by_role("button", name="Chat settings").click()
    page.get_by_label("Temperature").fill("0.7")
    page.get_by_role("button", name="Save settings").click()
    status = page.locator("#settings-status")
    expect(status).to_have_text("Saved")
    sent_elsewhere(page, "from the other tab")
    regain_focus(page)
    expect(page.locator(".message.user")).to_have_text(["first", "from the other tab"])
    expect(status).to_have_text("Saved")
    expect(page.get_by_label("Temperature")).to_have_value("0.7")
    # Settings changed in another tab are shown when this one is brought back.
    page.request.patch(f"/chat/api/sessions/{chat_id(page)}", data={"temperature": 1.2})
    regain_focus(page)
    expect(page.get_by_label("Temperature")).to_have_value("1.2")


def test_a_chat_deleted_in_another_tab_says_so_until_another_chat_is_opened(
    page: Page,
) -> None:
    pick_model(page, "mock/echo")
    wait_until_answered(send(page, "kept elsewhere"))
    kept = chat_id(page)
    new_chat(page)
    wait_until_answered(send(page, "deleted elsewhere"))
    page.request.delete(f"/chat/api/sessions/{chat_id(page)}")
    regain_focus(page)
    notice = page.get_by_role("status").filter(has_text="deleted in another tab")
    expect(notice).to_have_text("This chat was deleted in another tab or window.")
    expect(page.locator(".message")).to_have_count(0)
    # Another chat opened: the notice was about the one that went, and goes too.
    page.locator(f".session[data-session-id='{kept}'] .session-open").click()
    expect(page.locator(".message.user")).to_have_text(["kept elsewhere"])
    expect(notice).to_have_count(0)
