"""In Chromium against the test Dovecot: Add POP3 Account, Test Account inline, Create Account, change password."""
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import sign_in

pytestmark = pytest.mark.e2e


def test_add_test_create_and_change_the_password_of_a_pop3_account(page: Page, mail_live_server, dovecot):
    user, password = dovecot.new_user()
    dovecot.deliver(user, b"Subject: hello\r\n\r\nhi\r\n")
    sign_in(page, mail_live_server, mail_live_server.rep)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Mail Accounts").click()
    page.get_by_role("button", name="Add POP3 Account").click()
    expect(page.get_by_text("IMAP is not supported")).to_be_visible()

    page.get_by_label("Account Name").fill("Work")
    page.get_by_label("Email Address").fill(f"{user}@example.com")
    page.get_by_label("Security").select_option("starttls")  # fills the usual port, in place
    expect(page.get_by_label("Port")).to_have_value("110")
    page.get_by_label("Incoming Server").fill(dovecot.host)
    page.get_by_label("Port").fill(str(dovecot.port))
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Test Account").click()
    report = page.locator(".test-report")
    expect(report).to_contain_text("The server rejected the username or password.")
    report.get_by_text("Details").click()
    expect(report.locator("details")).to_contain_text("-ERR [AUTH] Authentication failed.")
    expect(page.get_by_label("Password")).to_have_value("not-the-password")  # kept in the browser across the swap

    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Test Account").click()
    expect(report).to_contain_text("Signed in")
    expect(report).to_contain_text("1 message")
    expect(report).to_contain_text("TLS established")
    page.screenshot(path="test-artifacts/add-pop3-account.png", full_page=True)

    page.get_by_role("button", name="Create Account").click()
    expect(page.get_by_role("heading", name="Mail Accounts")).to_be_visible()
    row = page.locator("tr", has_text="Work")
    expect(row).to_contain_text("Default")
    # Its first poll was asked for with it: the row follows that poll (Waiting, Fetching) to Ready.
    expect(row).to_contain_text("Ready", timeout=20000)
    expect(row).to_contain_text("1 new")

    row.get_by_role("link", name="Change the password of Work").click()
    page.get_by_label("New password").fill("wrong-again")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".test-report")).to_contain_text("rejected the username or password")
    dovecot.add_user(user, "the-new-password")
    page.get_by_label("New password").fill("the-new-password")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("The password of Work has been changed.")


def test_typing_on_while_the_address_is_looked_up_loses_nothing(page: Page, mail_live_server):
    """Issue 13.4: email, Tab, server name typed quickly; the look-up never replaces the field the
    user is in nor a typed value, and fills only the empty ones (the username here)."""
    sign_in(page, mail_live_server, mail_live_server.rep)
    page.goto(mail_live_server.url + "/settings/mail/accounts/new")
    looked_up = "**/settings/mail/accounts/form"
    page.get_by_label("Email Address").press_sequentially("ann@nowhere.example", delay=5)
    with page.expect_response(looked_up):  # the look-up starts at Tab and answers while this is typed
        page.keyboard.press("Tab")
        page.keyboard.type("pop.nowhere.example", delay=40)
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")
    server = page.get_by_label("Incoming Server")
    expect(server).to_be_focused()
    expect(server).to_have_value("pop.nowhere.example")
    expect(page.get_by_label("Username")).to_have_value("ann@nowhere.example")  # empty: filled in

    page.get_by_label("Username").fill("ann")
    page.get_by_label("Email Address").fill("ann@gmail.com")
    with page.expect_response(looked_up):
        page.get_by_label("Email Address").press("Tab")
    expect(page.locator(".provider-note")).to_contain_text("Gmail")
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")
    expect(server).to_have_value("pop.nowhere.example")  # a typed server is never replaced by Gmail's
    expect(page.get_by_label("Username")).to_have_value("ann")
