"""In Chromium at a laptop's and a phone's width, from the keyboard where it matters: Send Email
asks before a blank message, the Mail Add-on form keeps what was typed across modes, checkboxes
refresh the form at once, and focus stays where the user is."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.pages import ADMIN, REP, REP2, context, demo_server, sign_in, tab  # noqa: F401

pytestmark = pytest.mark.e2e


def test_blank_subject_or_message_asks_first_and_both_blank_is_refused(tab, demo_server):
    sign_in(tab, demo_server.url, ADMIN)
    tab.goto(demo_server.url + "/compose/leads/1")
    tab.locator("#body").fill("Hello Olivia")
    tab.get_by_role("button", name="Send", exact=True).click()
    expect(tab.get_by_role("alert")).to_contain_text("Send without a subject?")
    expect(tab.get_by_role("button", name="Send without a subject")).to_be_focused()
    tab.locator("#subject").fill("Quote")
    tab.locator("#body").fill("")
    tab.get_by_role("button", name="Send", exact=True).click()
    expect(tab.get_by_role("alert")).to_contain_text("Send an empty message?")
    expect(tab.get_by_role("button", name="Send the empty message")).to_be_focused()  # the swap has settled
    tab.locator("#subject").fill("")
    tab.get_by_role("button", name="Send", exact=True).click()
    expect(tab.locator("#subject-error")).to_contain_text("both are empty")
    expect(tab.locator("#subject")).to_have_attribute("aria-invalid", "true")
    expect(tab.locator("#body-error")).to_be_visible()


DANIEL_EXCLUDED = "northwind.example, verdepharma.example"  # as the demo sets them (mail/demo.py)


def test_exclude_domains_survive_switching_modes_and_only_save_stores(tab, demo_server):
    sign_in(tab, demo_server.url, REP)  # Daniel: Public, his own company and one more domain excluded
    tab.goto(demo_server.url + "/settings/mail/addon/")
    domains = tab.get_by_label("Exclude Domains")
    expect(domains).to_have_value(DANIEL_EXCLUDED)
    assert (domains.get_attribute("placeholder") or "").startswith("for example")
    domains.fill("northwind.example, sakurafoods.example")
    tab.get_by_label("Private").check()
    expect(tab.locator("#mode-explanation")).to_contain_text("Private - Do not share")
    expect(tab.get_by_label("Private")).to_be_focused()
    tab.get_by_label("Public").check()
    expect(tab.locator("#mode-explanation")).to_contain_text("Public - Share Emails")
    expect(tab.get_by_label("Exclude Domains")).to_have_value("northwind.example, sakurafoods.example")
    tab.reload()  # nothing was saved
    expect(tab.get_by_label("Exclude Domains")).to_have_value(DANIEL_EXCLUDED)


def test_save_while_the_form_is_still_refreshing_is_not_lost(tab, demo_server):
    """Choosing a mode refreshes the form; a Save pressed before that refresh is back still saves.
    (htmx queued the Save behind the refresh, whose swap then dropped it: nothing was saved.)"""
    held = []
    tab.route("**/settings/mail/addon/preview", lambda route: held.append(route))  # waits until let go
    sign_in(tab, demo_server.url, ADMIN)  # Margaret: Private
    tab.goto(demo_server.url + "/settings/mail/addon/")
    tab.get_by_label("Custom - Record-level Sharing").check()
    tab.wait_for_function("() => document.querySelector('#addon-form .htmx-request')")  # on its way
    tab.get_by_role("button", name="Save").click()
    expect(tab.get_by_role("status").first).to_contain_text("Mail Add-on settings saved.")
    for route in held:  # too late now: its request was given up for the Save
        try:
            route.continue_()
        except Exception:  # noqa: BLE001 (Playwright refuses a route whose request was aborted)
            pass
    tab.unroute_all()
    tab.reload()
    expect(tab.get_by_label("Custom - Record-level Sharing")).to_be_checked()
    tab.get_by_label("Private - Only me").check()  # as it was, for the module's other tests
    expect(tab.locator("#mode-explanation")).to_contain_text("Private - Do not share")
    tab.get_by_role("button", name="Save").click()
    expect(tab.get_by_role("status").first).to_contain_text("Mail Add-on settings saved.")


def test_ticking_consolidate_reveals_folder_or_label_at_once(tab, demo_server):
    sign_in(tab, demo_server.url, REP2)
    tab.goto(demo_server.url + "/settings/mail/addon/")
    tab.get_by_text("Advanced Settings").click()
    box = tab.get_by_label("Consolidate all my customers' emails in a single place")
    box.focus()
    tab.keyboard.press("Space")
    expect(tab.get_by_role("group", name="Group them in")).to_be_visible()
    expect(tab.get_by_label("Folder or label name")).to_have_value("Customers")
    expect(tab.get_by_label("Consolidate all my customers' emails in a single place")).to_be_focused()


def test_same_credentials_hides_username_and_password(tab, demo_server):
    sign_in(tab, demo_server.url, REP)
    tab.goto(demo_server.url + "/settings/mail/send-as/new")
    tab.get_by_label("From address").fill("daniel.ortiz@northwind.example")
    tab.get_by_label("From address").press("Tab")
    same = tab.get_by_label("Use the same credentials as the incoming account")
    expect(same).to_be_visible()
    expect(tab.get_by_label("Username")).to_be_visible()
    same.check()
    expect(tab.get_by_label("Username")).to_have_count(0)
    expect(tab.get_by_label("Password", exact=True)).to_have_count(0)
    expect(tab.locator("#identity-form")).to_contain_text("Signing in as")


def test_focus_stays_on_share_email_after_ticking_it(tab, demo_server):
    sign_in(tab, demo_server.url, REP2)  # Priya: Custom
    tab.goto(demo_server.url + "/leads/1")
    share = tab.get_by_role("switch", name="Share Email")
    share.focus()
    tab.keyboard.press("Space")
    expect(tab.locator(".share-email")).to_contain_text("are shared with everyone")
    expect(tab.get_by_role("switch", name="Share Email")).to_be_focused()
    tab.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")
    tab.keyboard.press("Space")
    expect(tab.locator(".share-email")).to_contain_text("Only you see your emails")
