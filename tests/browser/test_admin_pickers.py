"""The key and team filters of the usage view and the request log reach every key and
team, however many there are, and the log names every key on its page."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

from tests.browser.admin_page import ask, eventually, go_to, make_key, unique
from tests.browser.conftest import PATIENCE_MS

#: Keys made: one more than the first page of 200 names the pickers used to load.
MANY = 201
#: Seconds for a call's usage record to reach the store and its roll-ups (batched writes).
RECORDED_SECONDS = PATIENCE_MS / 1000


def pick(view: Locator, label: str, typed: str, suggestion_start: str) -> None:
    """Type into a picker and take the suggestion that starts with ``suggestion_start``, as
    a click or Enter in the browser's list of suggestions would."""
    picker = view.get_by_label(label, exact=True)
    picker.fill(typed)
    choices = picker.get_attribute("list")
    suggestion = view.locator(f'datalist#{choices} option[value^="{suggestion_start}"]')
    expect(suggestion).to_have_count(1)
    picker.fill(suggestion.get_attribute("value") or "")


def applied(view: Locator, found: Locator, what: str) -> None:
    """Apply the filters until ``found`` shows (the roll-ups and the log fill in batches)."""

    def shown() -> bool | None:
        view.get_by_role("button", name="Apply").click()
        expect(view).not_to_have_attribute("aria-busy", "true")
        return True if found.count() else None

    eventually(shown, RECORDED_SECONDS, what)


def test_keys_past_the_first_200_names_are_picked_and_named_in_the_log(
    admin: Page, admin_gateway_url: str
) -> None:
    stem = unique("zz-many")  # after every other test's key by name
    made = [make_key(admin_gateway_url, f"{stem}-{n:03d}") for n in range(MANY)]
    last, before = made[-1], made[-2]
    ask(admin_gateway_url, before["key"])
    ask(admin_gateway_url, last["key"])

    go_to(admin, "Requests")
    log = admin.locator(".requests-view")
    rows = log.locator("tbody tr.openable")
    # Every key of a page by its name, not its id, however far down the names it is.
    applied(log, rows.filter(has_text=last["name"]), "the calls in the request log")
    expect(rows.filter(has_text=before["name"])).to_have_count(1)
    expect(rows.filter(has_text=last["id"])).to_have_count(0)

    pick(log, "Key", f"{stem}-200", f"{last['name']} (mw-{last['prefix']}")
    log.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(last["name"])
    # A key's whole name, typed, is as good as its suggestion.
    log.get_by_label("Key", exact=True).fill(before["name"])
    log.get_by_label("Key", exact=True).press("Enter")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(before["name"])
    log.get_by_label("Key", exact=True).fill(f"{stem}-no-such-key")
    log.get_by_role("button", name="Apply").click()
    expect(log.locator(".view-status.failed")).to_contain_text(
        f"Key: no key is named “{stem}-no-such-key”"
    )

    go_to(admin, "Usage")
    usage = admin.locator(".usage-view")
    pick(usage, "Key", f"{stem}-200", f"{last['name']} (mw-")
    top_keys = usage.locator(".top-keys tbody tr")
    applied(usage, top_keys.filter(has_text=last["name"]), "the call in the usage view")
    expect(top_keys).to_have_count(1)
    expect(usage.locator(".tile").filter(has_text="Requests").locator(".tile-value")).to_have_text(
        "1"
    )


def test_the_team_filter_offers_a_team_only_its_keys_name(
    admin: Page, admin_gateway_url: str
) -> None:
    team = unique("keys-only")  # never made in the Teams view or the API
    member = make_key(admin_gateway_url, unique("member"), owner_team=team)
    ask(admin_gateway_url, member["key"])

    go_to(admin, "Usage")
    usage = admin.locator(".usage-view")
    pick(usage, "Team", team[:-3], team)
    top_keys = usage.locator(".top-keys tbody tr")
    applied(usage, top_keys.filter(has_text=member["name"]), "the team's call in the usage view")
    expect(top_keys).to_have_count(1)
