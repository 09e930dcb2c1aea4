"""Issue 13.11 from the keyboard alone: a refused sign-in lets the password be typed again at once,
and the whole flow (sign in, add a POP3 account, Test Account, choose a sharing mode, tick Share
Email, read, reply) works with Tab, Enter, Space and typing, a visible focus ring on every stop."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_a_refused_sign_in_focuses_the_empty_password_field(page: Page, mail_live_server):
    email, password = mail_live_server.rep
    page.goto(mail_live_server.url + "/signin")
    page.keyboard.type(email)  # the address field has the focus on arrival
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_focused()
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_label("Email")).to_have_value(email)
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
