"""Every page, at a laptop's width and at a phone's, as the administrator and as a sales rep:
nothing wider than the screen, axe-core finds no violation, and the keyboard's focus shows."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.pages import (ADMIN, PHONE_WIDTHS, REP, axe_violations, context, demo_server,  # noqa: F401
                             focus_outline, overflow, page_paths, sign_in, tab, unreachable, wrong_words)

pytestmark = pytest.mark.e2e


def fit_problems(page, path: str) -> list[str]:
    """What does not fit the page's screen: wider than it, or an action out of reach."""
    problems = [f"{path}: {wider}px wider than the screen" for wider in [overflow(page)] if wider > 0]
    return problems + [f"{path}: out of reach: {a}" for a in unreachable(page)]


def fit_problems_on_every_phone(page, path: str) -> list[str]:
    """Issue 13.10, from 360 to 430 px: the same page narrowed and widened in place (the layout
    follows the viewport at once; no second visit), then back to the phone's own width."""
    phone = page.viewport_size
    problems = []
    for name, size in PHONE_WIDTHS.items():
        page.set_viewport_size(size)
        problems += [f"{problem} (at {name})" for problem in fit_problems(page, path)]
    page.set_viewport_size(phone)
    return problems


@pytest.mark.parametrize("who", [ADMIN, REP], ids=["admin", "rep"])
def test_every_page_fits_the_screen_and_passes_axe(tab, demo_server, who):
    """At 1366 and 390 px: fit, reach, wording and axe; on the phone also at 360 and 430 px."""
    on_phone = tab.viewport_size["width"] < 640
    sign_in(tab, demo_server.url, who)
    problems = []
    for path in page_paths(demo_server.app, who):
        response = tab.goto(demo_server.url + path)
        assert response.status < 400, f"{path}: {response.status}"
        problems += fit_problems(tab, path)
        problems += [f"{path}: says {w!r}" for w in wrong_words(tab)]
        problems += [f"{path}: {v}" for v in axe_violations(tab)]
        if on_phone:
            problems += fit_problems_on_every_phone(tab, path)
    assert not problems, "\n".join(problems)


def test_signed_out_pages_fit_and_pass_axe(tab, demo_server):
    tab.goto(demo_server.url + "/signin")
    assert overflow(tab) <= 0
    assert axe_violations(tab) == []
    if tab.viewport_size["width"] < 640:
        assert fit_problems_on_every_phone(tab, "/signin") == []


def test_skip_link_and_a_visible_focus_ring_on_links_buttons_and_fields(tab, demo_server):
    sign_in(tab, demo_server.url, REP)
    tab.goto(demo_server.url + "/leads/")
    tab.keyboard.press("Tab")
    skip = tab.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_visible()
    assert focus_outline(tab)
    tab.keyboard.press("Enter")
    seen = set()
    for _ in range(12):
        tab.keyboard.press("Tab")
        tag = tab.evaluate("document.activeElement.tagName")
        seen.add(tag)
        assert focus_outline(tab), f"no visible focus on a {tag}"
    assert {"A", "INPUT"} <= seen or {"A", "BUTTON"} <= seen
    tab.goto(demo_server.url + "/settings/mail/addon/")
    for selector in ["input[type=radio]", "textarea, input[type=text]", "button[type=submit]"]:
        tab.locator(selector).first.focus()
        tab.evaluate("document.activeElement.matches(':focus-visible')")
        assert focus_outline(tab), f"no visible focus on {selector}"
