"""In Chromium with two aiosmtpd servers, the rep's own and the organisation's relay: a Send Mail As code
comes only through the relay, and without a relay an administrator approves the address in Setup."""
import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import sign_in
from tests.smtp_relay import mail_cafile, smtp_relay  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e
ADDRESS = "daniel@northwind.example"


def to(server, address, since):
    return [m for m in server.messages[since:] if address in m[2]]


def add_send_as(page: Page, server, login, password, button):
    page.get_by_role("banner").get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Send Mail As").click()
    page.get_by_role("button", name="Add a Send Mail As address").click()
    page.get_by_label("From name").fill("Daniel Ortiz")
    page.get_by_label("From address").fill(ADDRESS)
    page.get_by_label("From address").press("Tab")  # leaving the address refreshes the form in place
    page.wait_for_load_state("networkidle")
    expect(page.get_by_label("Security")).to_have_value("starttls")
    page.get_by_label("SMTP server").fill(server.host)
    page.get_by_label("Port").fill(str(server.port))
    page.get_by_label("Username").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name=button).click()


def sign_out(page: Page):
    page.get_by_role("button", name="Sign out").click()


def test_code_comes_through_the_relay_not_the_reps_own_server(page: Page, mail_live_server, smtp_server, smtp_relay):
    relay_login, relay_password = smtp_relay.new_user("relay")
    sign_in(page, mail_live_server, mail_live_server.admin)
    page.get_by_role("link", name="Setup").click()
    page.get_by_role("link", name="Mail Add-on").click()
    page.get_by_label("Relay server").fill(smtp_relay.host)
    page.get_by_label("Relay security").select_option("starttls")
    page.get_by_label("Relay port").fill(str(smtp_relay.port))
    page.get_by_label("Relay username").fill(relay_login)
    page.get_by_label("Relay password").fill("not-the-password")
    page.get_by_label("From address for system mail").fill("crm@northwind.example")
    page.get_by_role("button", name="Test relay").click()
    report = page.locator("#relay-form .test-report")
    expect(report).to_contain_text("rejected the username or password")
    page.get_by_label("Relay password").fill(relay_password)
    page.get_by_role("button", name="Test relay").click()
    expect(report).to_contain_text("Signed in")
    expect(report).to_contain_text("TLS established")
    page.get_by_role("button", name="Save relay").click()
    expect(page.get_by_role("status").first).to_contain_text("The outgoing relay is saved")
    expect(page.get_by_text("Relay set")).to_be_visible()
    expect(page.get_by_label("Relay password")).to_have_value("")  # never shown back
    page.screenshot(path="test-artifacts/setup-outgoing-relay.png", full_page=True)
    sign_out(page)

    login, password = smtp_server.new_user()
    own_before, relay_before = len(smtp_server.messages), len(smtp_relay.messages)
    sign_in(page, mail_live_server, mail_live_server.rep)
    add_send_as(page, smtp_server, login, password, "Save and send a code")
    expect(page.get_by_role("heading", name=f"Verify {ADDRESS}")).to_be_visible()
    assert to(smtp_server, ADDRESS, own_before) == []  # the rep's own server never saw the code
    (_, mail_from, _, content), = to(smtp_relay, ADDRESS, relay_before)
    assert mail_from == "crm@northwind.example"
    code = re.search(rb"verification code: (\d{6})", content).group(1).decode()
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Verify").click()
    row = page.locator("tr", has_text=ADDRESS)
    expect(row).to_contain_text("Verified")


def test_without_a_relay_an_administrator_approves_the_address(page: Page, mail_live_server, smtp_server):
    login, password = smtp_server.new_user()
    before = len(smtp_server.messages)
    sign_in(page, mail_live_server, mail_live_server.rep)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Send Mail As").click()
    page.get_by_role("button", name="Add a Send Mail As address").click()
    expect(page.get_by_text("Your organisation has no outgoing relay")).to_be_visible()
    add_send_as(page, smtp_server, login, password, "Save and ask for approval")
    expect(page.get_by_role("status").first).to_contain_text(f"{ADDRESS} is waiting for an administrator's approval")
    expect(page.locator(".notice")).to_contain_text("waiting for an administrator's approval")
    assert to(smtp_server, ADDRESS, before) == []
    page.get_by_role("link", name="Send Mail As", exact=True).click()
    expect(page.locator("tr", has_text=ADDRESS)).to_contain_text("Waiting for approval")
    sign_out(page)

    sign_in(page, mail_live_server, mail_live_server.admin)
    page.get_by_role("link", name="Setup").click()
    page.get_by_role("link", name="1 Send Mail As request waiting").click()
    request = page.locator("#send-as-requests tr", has_text=ADDRESS)
    expect(request).to_contain_text("Daniel Ortiz")
    page.screenshot(path="test-artifacts/setup-send-as-requests.png", full_page=True)
    request.get_by_role("button", name=f"Approve {ADDRESS} for Daniel Ortiz").click()
    expect(page.locator("#send-as-requests")).to_contain_text("No Send Mail As address is waiting for approval.")
    expect(page.get_by_role("status").first).to_contain_text("is approved")
    sign_out(page)

    sign_in(page, mail_live_server, mail_live_server.rep)
    page.goto(mail_live_server.url + "/settings/mail/send-as/")
    expect(page.locator("tr", has_text=ADDRESS)).to_contain_text("Verified")
