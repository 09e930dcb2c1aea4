"""Sign in with a provider, through the app's pages, against the real parts: the test authorization
server (Authlib), Dovecot checking tokens by introspection, aiosmtpd taking AUTH XOAUTH2, and the
Microsoft-like proxy. Each test runs on SQLite and PostgreSQL."""
from __future__ import annotations

import logging
import urllib.parse
from datetime import timedelta
from pathlib import Path

import pytest

from crm import users
from mail import oauth, signin
from mail.inbound import leases, sync, worker
from mail.outbound import identities, smtp
from models import AccountState, Email, MailAccount, SendAs, SignInProvider, db, utcnow
from tests.conftest import PASSWORD, FreshContextClient
from tests.integration.oauth.helpers import consent

MESSAGE = b"From: olivia@bw.example\r\nTo: rep@example.com\r\nSubject: {n}\r\nMessage-ID: <{n}@bw.example>\r\n\r\nHi.\r\n"
PROVIDER_LOGGERS = ("authlib.oauth2.rfc6749", "authlib.oauth2.rfc7", "werkzeug")
CALLBACK = "http://localhost/mail/oauth/callback"  # url_for(_external=True) under the test client


def message(n: str) -> bytes:
    return MESSAGE.replace(b"{n}", n.encode())


@pytest.fixture
def oauth_app(app_factory, oauth_dovecot, oauth_smtp_server, tmp_path):
    """The app with the add-on on, trusting the OAuth Dovecot's and SMTP server's certificates."""
    from mail.org import set_mail_addon_enabled

    bundle = tmp_path / "ca.pem"
    bundle.write_text(Path(oauth_dovecot.cafile).read_text() + Path(oauth_smtp_server.cafile).read_text())
    app = app_factory(MAIL_TLS_CA_FILE=str(bundle), MAIL_TIMEOUT_S=3)
    app.test_client_class = FreshContextClient
    with app.app_context():
        set_mail_addon_enabled(True)
        yield app


@pytest.fixture
def provider(oauth_app, oauth_server):
    """The test server added by an administrator on Setup > Sign-in providers, through the page."""
    users.create_user("admin@example.com", "Ada Admin", PASSWORD, admin=True)
    admin = oauth_app.test_client()
    admin.post("/signin", data={"email": "admin@example.com", "password": PASSWORD})
    registered = oauth_server.register_client(redirect_uris=[CALLBACK], scope="mail")
    page = admin.get("/setup/addons/mail/sign-in").get_data(as_text=True)
    assert CALLBACK in page  # the redirect URL to register
    response = admin.post("/setup/addons/mail/sign-in/new", data={
        "generic-name": "Local ID", "generic-authorization_url": oauth_server.authorization_url,
        "generic-token_url": oauth_server.token_url, "generic-revocation_url": oauth_server.revocation_url,
        "generic-scopes": "mail", "generic-covers_smtp": "y", "generic-client_id": registered.client_id,
        "generic-client_secret": registered.client_secret})
    assert response.status_code == 303
    row = db.session.scalars(db.select(SignInProvider)).one()
    row.registered, row.admin = registered, admin
    return row


@pytest.fixture
def rep(oauth_app, provider):
    user = users.create_user("rep@example.com", "Rita Rep", PASSWORD)
    client = oauth_app.test_client()
    client.post("/signin", data={"email": user.email, "password": PASSWORD})
    return user, client


@pytest.fixture
def mailbox(oauth_server, oauth_dovecot):
    """A person at the provider with one message waiting: (username, password)."""
    user, password = oauth_server.new_user("rep")
    oauth_dovecot.mailbox(user)
    oauth_dovecot.deliver(user, message("first"))
    return user, password


def account_fields(dovecot, user: str, **extra) -> dict:
    return {"name": "Work", "email": f"{user}@example.com", "host": dovecot.host, "port": str(dovecot.ssl_port),
            "security": "ssl", "username": user, "password": "", "leave": "leave", **extra}


def follow_sign_in(client, idp, start_response, user: str, password: str):
    """The browser's part: from HX-Redirect to the consent page, then back to the callback."""
    url = start_response.headers["HX-Redirect"]
    assert url.startswith(idp.authorization_url + "?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert query["code_challenge_method"] == "S256" and query["state"] and query["redirect_uri"] == CALLBACK
    location = consent(idp, url, user, password)
    assert location.startswith(CALLBACK + "?")
    return client.get(location[len("http://localhost"):])


def add_signed_in_account(client, provider, oauth_server, oauth_dovecot, mailbox, **extra):
    user, password = mailbox
    start = client.post("/mail/oauth/accounts/start", data={**account_fields(oauth_dovecot, user, **extra),
                                                            "provider_id": provider.id}, headers={"HX-Request": "true"})
    assert start.status_code == 200, start.get_data(as_text=True)
    return follow_sign_in(client, oauth_server, start, user, password)


def test_the_form_offers_the_provider_and_the_password_path_stays(rep, provider):
    _, client = rep
    page = client.get("/settings/mail/accounts/new").get_data(as_text=True)
    assert "Sign in with Local ID" in page and 'name="password"' in page
    region = client.post("/settings/mail/accounts/form", data={"email": "someone@outlook.com"},
                         headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Sign in with Microsoft is not set up in this CRM yet" in region and "Let devices and apps use POP" in region


def test_sign_in_tests_then_creates_the_account_and_it_is_polled(rep, provider, oauth_server, oauth_dovecot,
                                                                 mailbox, oauth_app):
    owner, client = rep
    back = add_signed_in_account(client, provider, oauth_server, oauth_dovecot, mailbox)
    assert back.status_code == 303 and back.headers["Location"].endswith("/settings/mail/accounts")
    listing = client.get("/settings/mail/accounts").get_data(as_text=True)
    assert f"Created the account Work. Signed in as {mailbox[0]} with Local ID: 1 message" in listing
    account = db.session.scalars(db.select(MailAccount)).one()
    assert account.signs_in and account.password_encrypted == "" and account.sign_in_provider_id == provider.id
    assert account.token_expires_at is not None and account.state is AccountState.READY
    result = sync.poll_account(oauth_app.extensions["mail"], account.id)
    assert result.ok and result.fetched == 1
    assert f"user=<{mailbox[0]}>, method=XOAUTH2" in oauth_dovecot.log_tail()


def test_a_refused_consent_returns_to_the_form_with_a_sentence(rep, provider, oauth_server, oauth_dovecot, mailbox):
    _, client = rep
    user, password = mailbox
    start = client.post("/mail/oauth/accounts/start", data={**account_fields(oauth_dovecot, user),
                                                            "provider_id": provider.id}, headers={"HX-Request": "true"})
    location = consent(oauth_server, start.headers["HX-Redirect"], user, password, decision="deny")
    back = client.get(location[len("http://localhost"):])
    assert back.status_code == 422
    page = back.get_data(as_text=True)
    assert "Access was not allowed at Local ID, so the account was not connected." in page
    assert f'value="{user}"' in page  # the form as it was
    assert db.session.scalar(db.select(db.func.count()).select_from(MailAccount)) == 0
    replay = client.get(location[len("http://localhost"):])  # the state was used up
    assert replay.status_code == 303
    assert "did not start here" in client.get("/settings/mail/accounts").get_data(as_text=True)


def test_without_javascript_the_sign_in_continues_through_a_link(rep, provider, oauth_dovecot, mailbox):
    _, client = rep
    page = client.post("/mail/oauth/accounts/start", data={**account_fields(oauth_dovecot, mailbox[0]),
                                                           "provider_id": provider.id})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Continue to Local ID" in html and "code_challenge_method=S256" in html
    missing = client.post("/mail/oauth/accounts/start", data={**account_fields(oauth_dovecot, mailbox[0]),
                                                              "provider_id": provider.id, "host": ""})
    assert missing.status_code == 422


def test_a_failed_server_test_keeps_nothing(rep, provider, oauth_server, oauth_dovecot, mailbox):
    _, client = rep
    back = add_signed_in_account(client, provider, oauth_server, oauth_dovecot, mailbox, username="someone-else")
    assert back.status_code == 422
    page = back.get_data(as_text=True)
    assert "Signed in" in page and "test-report failed" in page  # the step-by-step report on the form
    assert db.session.scalar(db.select(db.func.count()).select_from(MailAccount)) == 0


def test_refresh_before_expiry_saves_the_rotated_refresh_token(rep, provider, oauth_server, oauth_dovecot,
                                                               mailbox, oauth_app):
    _, client = rep
    add_signed_in_account(client, provider, oauth_server, oauth_dovecot, mailbox)
    ctx = oauth_app.extensions["mail"]
    account = db.session.scalars(db.select(MailAccount)).one()
    old_refresh = ctx.box.decrypt(account.refresh_token_encrypted)
    account.token_expires_at = utcnow() + timedelta(seconds=oauth.REFRESH_MARGIN_S - 10)  # about to expire
    db.session.commit()
    before = len(oauth_server.token_requests)
    assert sync.poll_account(ctx, account.id).ok
    assert [r[0] for r in oauth_server.token_requests[before:]] == ["refresh_token"]
    account = db.session.get(MailAccount, account.id)
    new_refresh = ctx.box.decrypt(account.refresh_token_encrypted)
    assert new_refresh != old_refresh and oauth_server.live_refresh_tokens(mailbox[0]) == [new_refresh]
    assert not oauth.needs_refresh(account.token_expires_at)
    assert sync.poll_account(ctx, account.id).ok  # a fresh token: no refresh this time
    assert len(oauth_server.token_requests) == before + 1


def test_a_refused_refresh_means_sign_in_again_and_signing_in_again_fetches_nothing_twice(
        rep, provider, oauth_server, oauth_dovecot, mailbox, oauth_app):
    _, client = rep
    add_signed_in_account(client, provider, oauth_server, oauth_dovecot, mailbox)
    ctx = oauth_app.extensions["mail"]
    account = db.session.scalars(db.select(MailAccount)).one()
    assert sync.poll_account(ctx, account.id).fetched == 1
    oauth_server.revoke_user(mailbox[0])  # consent withdrawn at the provider
    account.token_expires_at = utcnow()
    db.session.commit()
    result = sync.poll_account(ctx, account.id)
    account = db.session.get(MailAccount, account.id)
    assert not result.ok and account.state is AccountState.AUTH_ERROR and account.next_poll_at is None
    assert "no longer accepts this account's sign-in" in account.last_error
    assert leases.claim_due_accounts("w1") == []  # polling stops
    page = client.get("/settings/mail/accounts").get_data(as_text=True)
    assert "Local ID no longer accepts the sign-in of" in page and "Sign in again</button>" in page
    assert f"/mail/oauth/accounts/{account.id}/again" in page and "Update the password" not in page
    assert db.session.scalar(db.select(db.func.count()).select_from(Email)) == 1  # fetched mail stays

    oauth_dovecot.deliver(mailbox[0], message("second"))
    start = client.post(f"/mail/oauth/accounts/{account.id}/again", headers={"HX-Request": "true"})
    back = follow_sign_in(client, oauth_server, start, *mailbox)
    assert back.status_code == 303
    account = db.session.get(MailAccount, account.id)
    assert account.state is AccountState.READY and account.next_poll_at is None  # due at once
    assert leases.claim_due_accounts("w1") == [account.id]
    result = worker.poll_claimed(ctx, account.id, "w1")
    assert result.ok and result.fetched == 1  # only the new one
    subjects = sorted(db.session.scalars(db.select(Email.subject)))
    assert subjects == ["first", "second"]


def test_a_provider_outage_is_retried_with_backoff(rep, provider, oauth_server, oauth_dovecot, mailbox, oauth_app,
                                                   closed_port):
    _, client = rep
    add_signed_in_account(client, provider, oauth_server, oauth_dovecot, mailbox)
    ctx = oauth_app.extensions["mail"]
    account = db.session.scalars(db.select(MailAccount)).one()
    saved = account.refresh_token_encrypted
    account.token_expires_at = utcnow()
    provider = db.session.get(SignInProvider, provider.id)
    provider.token_url = f"http://127.0.0.1:{closed_port}/token"
    db.session.commit()
    result = sync.poll_account(ctx, account.id)
    account = db.session.get(MailAccount, account.id)
    assert not result.ok and result.error.kind == "network" and "trying again later" in account.last_error
    assert account.state is AccountState.ERROR and account.backoff_s > 0 and account.next_poll_at is not None
    assert account.refresh_token_encrypted == saved  # the grant is kept for the retry


def test_the_fetcher_never_sends_the_one_line_form(rep, provider, oauth_server, oauth_dovecot, mailbox, oauth_app,
                                                   one_line_refusing_proxy):
    _, client = rep
    proxy = one_line_refusing_proxy
    back = add_signed_in_account(client, provider, oauth_server, oauth_dovecot, mailbox, host=proxy.host,
                                 port=str(proxy.port), security="none")
    assert back.status_code == 303, back.get_data(as_text=True)
    account = db.session.scalars(db.select(MailAccount)).one()
    result = sync.poll_account(oauth_app.extensions["mail"], account.id)
    assert result.ok and result.fetched == 1
    assert proxy.one_line_refused == 0 and proxy.commands.count("AUTH XOAUTH2") == 2  # the test, then the poll


def test_send_mail_as_signs_in_and_sends_over_xoauth2(rep, provider, oauth_server, oauth_smtp_server, oauth_app):
    owner, client = rep
    user, password = oauth_server.new_user("sender")
    fields = {"from_name": "Rita", "from_address": f"{user}@example.com", "host": oauth_smtp_server.host,
              "port": str(oauth_smtp_server.port), "security": "starttls", "username": user, "password": "",
              "provider_id": provider.id}
    page = client.get("/settings/mail/send-as/new").get_data(as_text=True)
    assert "Sign in with Local ID" in page
    start = client.post("/mail/oauth/send-as/start", data=fields, headers={"HX-Request": "true"})
    back = follow_sign_in(client, oauth_server, start, user, password)
    assert back.status_code == 303 and "/verify" in back.headers["Location"]
    identity = db.session.scalars(db.select(SendAs)).one()
    assert identity.signs_in and identity.password_encrypted == ""
    identity.token_expires_at = utcnow()  # the send refreshes first, under the identity's refresh lease
    db.session.commit()
    ctx = oauth_app.extensions["mail"]
    settings = identities.connection_settings(ctx, identity)
    assert settings.oauth and db.session.get(SendAs, identity.id).refresh_lease_until is None
    from email.message import EmailMessage
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = f"{user}@example.com", "olivia@bw.example", "Hello"
    mail.set_content("Hi.")
    smtp.send(settings, ctx.policy(), mail, ["olivia@bw.example"])
    assert oauth_smtp_server.forms[-2:] == ["two-step", "two-step"]  # the test at sign-in, then the send
    assert oauth_smtp_server.messages[-1][0] == user


def test_a_refresh_running_elsewhere_is_waited_for_never_doubled(rep, provider, oauth_server, oauth_smtp_server,
                                                                 oauth_app):
    _, client = rep
    user, password = oauth_server.new_user("sender")
    start = client.post("/mail/oauth/send-as/start", data={
        "from_name": "Rita", "from_address": f"{user}@example.com", "host": oauth_smtp_server.host,
        "port": str(oauth_smtp_server.port), "security": "starttls", "username": user, "provider_id": provider.id},
        headers={"HX-Request": "true"})
    follow_sign_in(client, oauth_server, start, user, password)
    identity = db.session.scalars(db.select(SendAs)).one()
    identity.token_expires_at = utcnow()
    identity.refresh_lease_until = utcnow() + timedelta(seconds=30)  # another worker is refreshing
    db.session.commit()
    before = len(oauth_server.token_requests)
    with pytest.raises(Exception, match="Another process is renewing"):
        signin.identity_token(oauth_app.extensions["mail"], identity.id, wait_s=0.5)
    assert len(oauth_server.token_requests) == before  # no second refresh of the same token


def test_no_token_or_client_secret_reaches_a_page_a_log_or_the_database_in_clear(
        rep, provider, oauth_server, oauth_dovecot, mailbox, oauth_app, caplog):
    from tests.integration.test_mail_accounts import assert_secret_nowhere

    _, client = rep
    with caplog.at_level(logging.DEBUG):
        pages = [add_signed_in_account(client, provider, oauth_server, oauth_dovecot, mailbox)]
        account = db.session.scalars(db.select(MailAccount)).one()
        account.token_expires_at = utcnow()
        db.session.commit()
        sync.poll_account(oauth_app.extensions["mail"], account.id)  # a refresh, with rotation
        pages += [client.get("/settings/mail/accounts"), client.get("/settings/mail/accounts/new"),
                  provider.admin.get("/setup/addons/mail/sign-in")]
        oauth_server.revoke_user(mailbox[0])
        db.session.get(MailAccount, account.id).token_expires_at = utcnow()
        db.session.commit()
        sync.poll_account(oauth_app.extensions["mail"], account.id)
        pages.append(client.get("/settings/mail/accounts"))
    with oauth_server.lock:
        tokens = [t.value for t in oauth_server.tokens.values() if t.username == mailbox[0]]
    assert len(tokens) >= 4  # two access and two refresh tokens at least
    # The test provider runs in this process: its own (Authlib server) log lines are not ours.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(PROVIDER_LOGGERS))
    assert "refused a refresh_token request: invalid_grant" in ours  # the log was captured
    for secret in [*tokens, provider.registered.client_secret, provider.registered.client_id]:
        assert_secret_nowhere(secret, pages, ours)
