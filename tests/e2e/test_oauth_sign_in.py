"""In Chromium: an administrator adds the local sign-in provider (the test OAuth server), a rep adds a
POP3 account with "Sign in with ...", consents on the provider's page, comes back to a tested account
and its mail is fetched (Dovecot checking the token); the provider then revokes the sign-in: the
account says "Sign in again", the mail stays, and signing in again resumes polling without
fetching anything twice."""
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm import users
from mail.org import set_mail_addon_enabled
from models import db
from tests.conftest import PASSWORD, _live_server, sign_in

pytestmark = pytest.mark.e2e
POLL_TIMEOUT_MS = 20000
SHORT_LIVED_S = 60  # inside the refresh margin: every poll refreshes (and the provider rotates)


def message(subject: str) -> bytes:
    return (f"From: Olivia Bennett <olivia@bw.example>\r\nTo: Daniel <daniel@northwind.example>\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}@bw.example>\r\n"
            f"Date: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nHello.\r\n").encode()


@pytest.fixture
def oauth_live_server(tmp_path, oauth_dovecot, oauth_server):
    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path(oauth_dovecot.cafile).read_text())
    app, server = _live_server(tmp_path, MAIL_TLS_CA_FILE=str(bundle), MAIL_TIMEOUT_S=3, MAIL_POLLER="thread")
    with app.app_context():
        users.create_user("margaret@northwind.example", "Margaret Chen", PASSWORD, admin=True)
        users.create_user("daniel@northwind.example", "Daniel Ortiz", PASSWORD)
        set_mail_addon_enabled(True)
    server.admin = ("margaret@northwind.example", PASSWORD)
    server.rep = ("daniel@northwind.example", PASSWORD)
    lifetime, oauth_server.access_token_lifetime_s = oauth_server.access_token_lifetime_s, SHORT_LIVED_S
    try:
        with server:
            yield server
    finally:
        oauth_server.access_token_lifetime_s = lifetime
        poller = app.extensions.get("mail_poller")
        if poller is not None:
            poller.stop(10)
        with app.app_context():
            db.engine.dispose()


def consent(page: Page, user: str, password: str) -> None:
    expect(page.get_by_role("heading", name="Sign in to the test provider")).to_be_visible()
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Allow").click()


def test_sign_in_fetch_revoke_and_sign_in_again(page: Page, browser, oauth_live_server, oauth_server, oauth_dovecot):
    server = oauth_live_server
    sign_in(page, server, server.admin)
    page.get_by_role("link", name="Setup").click()
    page.get_by_role("link", name="Mail Add-on").first.click()
    page.get_by_role("link", name="Sign-in providers").click()
    redirect = page.locator("#redirect-uri").inner_text()
    assert redirect == server.url + "/mail/oauth/callback"
    registered = oauth_server.register_client(redirect_uris=[redirect], scope="mail")  # at the provider
    form = page.locator("#generic-providers form").last
    form.get_by_label("Name").fill("Local ID")
    form.get_by_label("Authorization endpoint").fill(oauth_server.authorization_url)
    form.get_by_label("Token endpoint").fill(oauth_server.token_url)
    form.locator("#generic-scopes").fill("mail")
    form.get_by_label("Client ID").fill(registered.client_id)
    form.get_by_label("Client secret").fill(registered.client_secret)
    form.get_by_role("button", name="Add provider").click()
    expect(page.get_by_text("Sign in with Local ID is set up.")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text(registered.client_secret)

    user, password = oauth_server.new_user("daniel")
    oauth_dovecot.mailbox(user)
    oauth_dovecot.deliver(user, message("Quarterly numbers"))
    rep = browser.new_context().new_page()
    rep.set_default_timeout(5000)
    sign_in(rep, server, server.rep)
    rep.goto(server.url + "/settings/mail/accounts/new")
    rep.get_by_label("Account Name").fill("Work")
    rep.get_by_label("Email Address").fill(f"{user}@northwind.example")
    rep.get_by_label("Email Address").press("Tab")
    rep.get_by_label("Incoming Server").fill(oauth_dovecot.host)
    rep.get_by_label("Port").fill(str(oauth_dovecot.ssl_port))
    rep.get_by_label("Username").fill(user)
    rep.get_by_role("button", name="Sign in with Local ID").click()
    consent(rep, user, password)

    expect(rep.get_by_role("heading", name="Mail Accounts")).to_be_visible()
    expect(rep.get_by_text(f"Created the account Work. Signed in as {user} with Local ID: 1 message")).to_be_visible()
    # Its first poll was asked for with it, and the health line follows that poll.
    expect(rep.locator(".account-health")).to_contain_text("fetched 1", timeout=POLL_TIMEOUT_MS)
    rep.goto(server.url + "/email/")
    expect(rep.get_by_text("Quarterly numbers")).to_have_count(1)

    oauth_server.revoke_user(user)  # consent withdrawn at the provider
    rep.goto(server.url + "/settings/mail/accounts")
    rep.get_by_role("button", name="Fetch now").click()
    expect(rep.locator(".account-health .badge")).to_have_text("Sign in again", timeout=POLL_TIMEOUT_MS)
    rep.reload()
    expect(rep.locator(".banner")).to_contain_text("Local ID no longer accepts the sign-in of Work")
    rep.goto(server.url + "/email/")
    expect(rep.get_by_text("Quarterly numbers")).to_have_count(1)  # nothing fetched is lost

    oauth_dovecot.deliver(user, message("Contract draft"))
    rep.goto(server.url + "/settings/mail/accounts")
    rep.locator(".banner").get_by_role("button", name="Sign in again").click()
    consent(rep, user, password)
    expect(rep.get_by_text("Signed in again: Work is fetched again from now on.")).to_be_visible()
    # Signing in again asked for a poll at once, which the health line follows.
    expect(rep.locator(".account-health")).to_contain_text("fetched 1", timeout=POLL_TIMEOUT_MS)  # only the new one
    expect(rep.locator(".account-health .badge")).to_have_text("Ready")
    rep.goto(server.url + "/email/")
    expect(rep.get_by_text("Contract draft")).to_have_count(1)
    expect(rep.get_by_text("Quarterly numbers")).to_have_count(1)  # not fetched twice
    rep.screenshot(path="test-artifacts/oauth-signed-in-again.png", full_page=True)
