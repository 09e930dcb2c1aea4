"""Settings > Mail > Mail Accounts against a real Dovecot: test, create, password, default, delete."""
import json
import logging
import re
from html import unescape as html_unescape

import pytest

from mail.inbound import accounts
from models import AccountState, MailAccount, User, db
from tests.conftest import PASSWORD


def form(dovecot, user, password, **changes):
    data = {"name": "Work", "email": f"{user}@example.com", "host": dovecot.host, "port": dovecot.ssl_port,
            "security": "ssl", "username": user, "password": password, "leave": "leave"}
    data.update(changes)
    return data


def count_accounts():
    return db.session.scalar(db.select(db.func.count()).select_from(MailAccount))


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_test_account_reports_each_step_and_the_mailbox(rep, dovecot, security):
    _, client = rep
    user, password = dovecot.new_user()
    dovecot.deliver(user, b"Subject: hi\r\n\r\nhello\r\n")
    port = dovecot.ssl_port if security == "ssl" else dovecot.port
    response = client.post("/settings/mail/accounts/test", data=form(dovecot, user, password, security=security, port=port),
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="account-form">')
    for step in ["Name resolved", "Connected", "Signed in"] + (["TLS established"] if security != "none" else []):
        assert step in html
    assert "1 message" in html and "UIDL supported" in html
    assert count_accounts() == 0  # Test Account saves nothing
    assert password not in html  # never sent back, not even the one just typed


def test_wrong_password_is_reported_inline_with_the_servers_reply(rep, dovecot):
    _, client = rep
    user, _ = dovecot.new_user()
    response = client.post("/settings/mail/accounts/test", data=form(dovecot, user, "wrong-password"),
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "The server rejected the username or password." in html and "-ERR [AUTH] Authentication failed." in html
    assert "wrong-password" not in html


def test_create_account_refuses_a_failed_sign_in_and_keeps_the_form(rep, dovecot):
    _, client = rep
    user, _ = dovecot.new_user()
    response = client.post("/settings/mail/accounts/new", data=form(dovecot, user, "wrong-password"),
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "rejected the username or password" in html
    assert f'value="{user}"' in html and count_accounts() == 0


def test_create_account_saves_it_encrypted_and_makes_the_first_one_default(rep, dovecot, mail_app):
    owner, client = rep
    user, password = dovecot.new_user()
    response = client.post("/settings/mail/accounts/new", data=form(dovecot, user, password))
    assert response.status_code == 303
    account = db.session.scalars(db.select(MailAccount)).one()
    assert account.is_default and account.user_id == owner.id and account.state is AccountState.READY
    assert password not in account.password_encrypted
    assert accounts.password_of(mail_app.extensions["mail"], account) == password
    page = client.get("/settings/mail/accounts").get_data(as_text=True)
    assert "Work" in page and "Default" in page and password not in page


def test_second_account_is_not_default_until_set(rep, dovecot):
    _, client = rep
    (u1, p1), (u2, p2) = dovecot.new_user(), dovecot.new_user()
    client.post("/settings/mail/accounts/new", data=form(dovecot, u1, p1, name="One"))
    client.post("/settings/mail/accounts/new", data=form(dovecot, u2, p2, name="Two"))
    one, two = db.session.scalars(db.select(MailAccount).order_by(MailAccount.id)).all()
    assert one.is_default and not two.is_default
    response = client.post(f"/settings/mail/accounts/{two.id}/default", headers={"HX-Request": "true"})
    assert response.get_data(as_text=True).lstrip().startswith('<section id="account-list">')
    db.session.expire_all()
    assert two.is_default and not one.is_default


def test_delete_account_passes_default_on(rep, dovecot):
    _, client = rep
    (u1, p1), (u2, p2) = dovecot.new_user(), dovecot.new_user()
    client.post("/settings/mail/accounts/new", data=form(dovecot, u1, p1, name="One"))
    client.post("/settings/mail/accounts/new", data=form(dovecot, u2, p2, name="Two"))
    one = db.session.scalars(db.select(MailAccount).order_by(MailAccount.id)).first()
    assert client.post(f"/settings/mail/accounts/{one.id}/delete").status_code == 303
    remaining = db.session.scalars(db.select(MailAccount)).one()
    assert remaining.name == "Two" and remaining.is_default


def test_change_password_is_tested_before_it_replaces_the_old_one(rep, dovecot, mail_app):
    _, client = rep
    user, password = dovecot.new_user()
    client.post("/settings/mail/accounts/new", data=form(dovecot, user, password))
    account = db.session.scalars(db.select(MailAccount)).one()
    url = f"/settings/mail/accounts/{account.id}/password"
    wrong = client.post(url, data={"password": "not-the-new-one"}, headers={"HX-Request": "true"})
    assert wrong.status_code == 422 and "rejected the username or password" in wrong.get_data(as_text=True)
    db.session.expire_all()
    assert accounts.password_of(mail_app.extensions["mail"], account) == password
    dovecot.add_user(user, "brand-new-password")
    assert client.post(url, data={"password": "brand-new-password"}).status_code == 303
    db.session.expire_all()
    assert accounts.password_of(mail_app.extensions["mail"], account) == "brand-new-password"


def test_refused_password_puts_a_banner_with_a_link_on_the_list(rep, dovecot):
    _, client = rep
    user, password = dovecot.new_user()
    client.post("/settings/mail/accounts/new", data=form(dovecot, user, password))
    account = db.session.scalars(db.select(MailAccount)).one()
    from mail.errors import auth as auth_error
    accounts.record_failure(account, auth_error("-ERR [AUTH] Authentication failed.", password))
    page = client.get("/settings/mail/accounts").get_data(as_text=True)
    assert "its emails are not being retrieved until the password is updated" in page
    assert f"/settings/mail/accounts/{account.id}/password" in page
    dovecot_ok = client.post(f"/settings/mail/accounts/{account.id}/password", data={"password": password})
    assert dovecot_ok.status_code == 303
    assert "not being retrieved" not in client.get("/settings/mail/accounts").get_data(as_text=True)


@pytest.mark.parametrize("field,value,message", [
    ("name", "", "Name the account, like Work."),
    ("name", "x" * 81, "At most 80 characters"),
    ("port", "0", "The port must be between 1 and 65535."),
    ("port", "70000", "The port must be between 1 and 65535."),
    ("port", "abc", "Enter a whole number."),
    ("host", "pop.example.com ", None),  # trailing space is trimmed, not an error
    ("host", "pop example.com", "A server name cannot contain spaces."),
    ("host", "https://pop.example.com/", "Enter only the server name, like pop.example.com, not a URL."),
    ("host", "pop.example.com:995", "Enter the port in the Port field, not after the server name."),
    ("email", "not-an-address", "Enter an email address like ann@example.com."),
    ("username", "", "Enter the username, often the email address."),
])
def test_bad_input_gets_an_inline_error_and_saves_nothing(rep, dovecot, field, value, message):
    _, client = rep
    response = client.post("/settings/mail/accounts/new", data=form(dovecot, "nobody", "x", **{field: value}),
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    if message is None:
        assert "field-error" not in html.split('id="test-result"')[0]
    else:
        assert response.status_code == 422 and message in html
    assert count_accounts() == 0


def test_a_second_account_with_the_same_server_and_username_is_refused(rep, dovecot):
    _, client = rep
    user, password = dovecot.new_user()
    client.post("/settings/mail/accounts/new", data=form(dovecot, user, password))
    again = client.post("/settings/mail/accounts/new", data=form(dovecot, user, password, name="Again", host="127.0.0.1"),
                        headers={"HX-Request": "true"})
    assert again.status_code == 422
    assert "You already have an account with this username on this server." in again.get_data(as_text=True)
    assert count_accounts() == 1


def test_microsoft_addresses_are_told_to_sign_in_with_microsoft(rep, dovecot):
    _, client = rep
    response = client.post("/settings/mail/accounts/new", data=form(dovecot, "u", "p", email="someone@outlook.com"),
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "Microsoft no longer accepts passwords over POP3" in html
    assert "sign in with Microsoft instead" in html and "Sign in with Microsoft is not set up in this CRM yet" in html


def test_typing_a_gmail_address_fills_the_server_and_offers_the_recent_note(rep):
    _, client = rep
    # Without JavaScript the page comes back filled in; with htmx only the provider region does, and
    # the browser fills its suggestions into empty fields (issue 13: no swap replaces a typed field).
    response = client.post("/settings/mail/accounts/form", data={"email": "ann@gmail.com", "security": "ssl", "leave": "delete"})
    html = response.get_data(as_text=True)
    assert 'value="pop.gmail.com"' in html and 'value="995"' in html and "recent:username@gmail.com" in html
    region = client.post("/settings/mail/accounts/form", data={"email": "ann@gmail.com", "host": "", "security": "ssl"},
                         headers={"HX-Request": "true"}).get_data(as_text=True)
    assert region.lstrip().startswith('<div id="provider-region"') and "<input" not in region
    fill = json.loads(html_unescape(region.split("data-fill='")[1].split("'")[0]))
    assert fill == {"server": {"host": "pop.gmail.com", "port": "995", "security": "ssl"},
                    "empty": {"username": "ann@gmail.com"}}
    assert "recent:username@gmail.com" in region
    applied = client.post("/settings/mail/accounts/form", data={"email": "ann@gmail.com", "security": "ssl", "leave": "delete",
                                                                "apply": "gmail"}, headers={"HX-Request": "true"})
    html = applied.get_data(as_text=True)
    assert 'value="recent:ann@gmail.com"' in html
    assert 'checked id="leave-0" name="leave" type="radio" value="leave"' in html or 'value="leave" checked' in html or (
        'id="leave-0"' in html and html.split('id="leave-0"')[0].rsplit("<input", 1)[1].find("checked") >= 0)


@pytest.mark.parametrize("security,port", [("starttls", "110"), ("ssl", "995")])
def test_choosing_the_security_fills_the_usual_port(rep, security, port):
    _, client = rep
    response = client.post("/settings/mail/accounts/form", data={"security": security, "port": "995" if port == "110" else "110"})
    assert f'value="{port}"' in response.get_data(as_text=True)
    page = client.get("/settings/mail/accounts/new").get_data(as_text=True)  # in the browser: the same table
    ports = json.loads(html_unescape(page.split('data-ports="')[1].split('"')[0]))
    assert ports == {"ssl": 995, "starttls": 110, "none": 110}


def test_add_page_says_pop3_only(rep):
    _, client = rep
    assert "IMAP is not supported" in client.get("/settings/mail/accounts/new").get_data(as_text=True)


def test_another_users_account_is_a_404_everywhere(rep, dovecot, mail_app):
    _, client = rep
    user, password = dovecot.new_user()
    client.post("/settings/mail/accounts/new", data=form(dovecot, user, password))
    account = db.session.scalars(db.select(MailAccount)).one()
    other = mail_app.test_client()
    other.post("/signin", data={"email": "admin@example.com", "password": PASSWORD})
    assert account.name not in other.get("/settings/mail/accounts").get_data(as_text=True)
    for method, url in [("get", f"/settings/mail/accounts/{account.id}/password"),
                        ("post", f"/settings/mail/accounts/{account.id}/password"),
                        ("post", f"/settings/mail/accounts/{account.id}/default"),
                        ("post", f"/settings/mail/accounts/{account.id}/delete")]:
        assert getattr(other, method)(url, data={"password": "x"}).status_code == 404
    assert count_accounts() == 1


def test_guard_refuses_a_local_server_unless_allowed(app_factory, dovecot, mail_cafile):
    from mail.org import set_mail_addon_enabled
    from crm import users
    app = app_factory(MAIL_ALLOW_LOCAL_SERVERS=False, MAIL_TLS_CA_FILE=mail_cafile)
    with app.app_context():
        set_mail_addon_enabled(True)
        users.create_user("admin@example.com", "Ada", PASSWORD, admin=True)
        client = app.test_client()
        client.post("/signin", data={"email": "admin@example.com", "password": PASSWORD})
        user, password = dovecot.new_user()
        refused = client.post("/settings/mail/accounts/test", data=form(dovecot, user, password)).get_data(as_text=True)
        assert "This server is not allowed" in refused and "Signed in" not in refused
        closed = client.post("/settings/mail/accounts/test", data=form(dovecot, user, password, port=1)).get_data(as_text=True)
        assert refused.split("This server is not allowed")[1][:80] == closed.split("This server is not allowed")[1][:80]
        assert client.post("/setup/addons/mail/settings", data={
            "allowed_mail_hosts": "127.0.0.1", "hosted_pop_port": 995, "hosted_pop_security": "ssl",
            "hosted_smtp_port": 587, "hosted_smtp_security": "starttls", "daily_send_limit_per_user": 300,
            "timezone": "UTC"}).status_code == 303
        allowed = client.post("/settings/mail/accounts/test", data=form(dovecot, user, password)).get_data(as_text=True)
        assert "Signed in" in allowed


def test_hosted_domain_user_types_only_the_password(rep, dovecot, mail_app):
    owner, client = rep
    from mail.org import org_settings_for_update
    org = org_settings_for_update()
    org.hosted_domain, org.hosted_pop_host, org.hosted_pop_port, org.hosted_pop_security = (
        "example.com", dovecot.host, dovecot.ssl_port, "ssl")
    db.session.commit()
    dovecot.add_user(owner.email, "hosted-pw-1")
    page = client.get("/settings/mail/accounts/new").get_data(as_text=True)
    assert "Your organisation's mailbox" in page and owner.email in page
    response = client.post("/settings/mail/accounts/hosted", data={"hosted-password": "hosted-pw-1"})
    assert response.status_code == 303
    account = db.session.scalars(db.select(MailAccount)).one()
    assert (account.email, account.username, account.port) == (owner.email, owner.email, dovecot.ssl_port)


def test_no_password_reaches_a_page_a_log_or_the_database_in_clear(rep, dovecot, mail_app, caplog):
    _, client = rep
    user, password = dovecot.new_user()
    with caplog.at_level(logging.DEBUG):
        pages = [client.post("/settings/mail/accounts/test", data=form(dovecot, user, password)),
                 client.post("/settings/mail/accounts/new", data=form(dovecot, user, password), follow_redirects=True),
                 client.get("/settings/mail/accounts")]
        account = db.session.scalars(db.select(MailAccount)).one()
        pages.append(client.get(f"/settings/mail/accounts/{account.id}/password"))
        pages.append(client.post(f"/settings/mail/accounts/{account.id}/password", data={"password": password + "x"}))
    assert_secret_nowhere(password, pages, caplog.text)


def assert_secret_nowhere(secret: str, pages, log: str) -> None:
    """The secret (a password, an OAuth token, a client secret) is in no page, no log line and no
    database row (tests/integration/oauth searches for tokens with it too)."""
    for page in pages:
        assert secret not in page.get_data(as_text=True)
    assert secret not in log
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                assert secret not in " ".join(str(v) for v in row)


def test_placeholders_on_add_pop3_account_are_examples_not_values(rep):
    """Issue 13.2: a placeholder that looks like a typed value ("Work mail", "pop.example.com") says "for example"."""
    _, client = rep
    page = html_unescape(client.get("/settings/mail/accounts/new").get_data(as_text=True))
    placeholders = re.findall(r'placeholder="([^"]*)"', page)
    assert "for example Work mail" in placeholders and "for example pop.example.com" in placeholders
    assert all(p.startswith("for example ") for p in placeholders), placeholders
