"""Settings > Mail > Send Mail As against real SMTP servers (aiosmtpd): test, prove ownership, password.

Two servers: `smtp_server` is the one users type in, `smtp_relay` the organisation's relay. An
ownership code must come only through the relay; without one, an administrator approves.
"""
import re
from datetime import timedelta

import pytest

from crm import users
from mail.outbound import identities, relay
from models import Approval, MailAccount, OrgSettings, SendAs, db
from tests.conftest import PASSWORD
from tests.smtp_relay import mail_cafile, smtp_relay  # noqa: F401  (fixtures)

RELAY_FROM = "crm@northwind.example"


def form(smtp_server, user, password, **changes):
    data = {"from_name": "Rita Rep", "from_address": "rita@example.com", "host": smtp_server.host,
            "port": smtp_server.port, "security": "starttls", "username": user, "password": password}
    data.update(changes)
    return data


def code_sent_to(server, address):
    for _, _, rcpts, content in reversed(server.messages):
        if address in rcpts:
            return re.search(rb"verification code: (\d{6})", content).group(1).decode()
    raise AssertionError(f"no code sent to {address}")


def sent_to(server, address, since=0):
    return [m for m in server.messages[since:] if address in m[2]]


@pytest.fixture
def relay_on(mail_app, smtp_relay):
    """The organisation's relay, set as an administrator sets it (tested, then kept)."""
    login, password = smtp_relay.new_user("relay")
    report = relay.save(mail_app.extensions["mail"], relay.RelayInput(
        host=smtp_relay.host, port=smtp_relay.port, security="starttls", username=login, password=password,
        from_address=RELAY_FROM))
    assert report.ok, report.error
    smtp_relay.login = login
    return smtp_relay


def admin_client(mail_app):
    client = mail_app.test_client()
    client.post("/signin", data={"email": "admin@example.com", "password": PASSWORD})
    return client


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_test_reports_connect_ehlo_tls_and_sign_in(rep, smtp_server, security):
    _, client = rep
    user, password = smtp_server.new_user()
    port = smtp_server.port if security == "starttls" else smtp_server.ssl_port
    html = client.post("/settings/mail/send-as/test", data=form(smtp_server, user, password, security=security, port=port),
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    for step in ("Connected", "EHLO", "TLS established", "Signed in"):
        assert step in html
    assert password not in html
    assert db.session.scalar(db.select(db.func.count()).select_from(SendAs)) == 0


def test_wrong_password_is_refused_and_nothing_kept(rep, smtp_server):
    _, client = rep
    user, _ = smtp_server.new_user()
    response = client.post("/settings/mail/send-as/new", data=form(smtp_server, user, "wrong-pw"),
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "The server rejected the username or password" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(SendAs)) == 0


def test_address_is_verified_by_the_code_mailed_through_the_relay(rep, smtp_server, relay_on):
    _, client = rep
    user, password = smtp_server.new_user()
    before = len(smtp_server.messages)
    response = client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password))
    assert response.status_code == 303
    identity = db.session.scalars(db.select(SendAs)).one()
    assert not identity.verified and identity.code_hash and password not in identity.password_encrypted
    assert sent_to(smtp_server, "rita@example.com", before) == []  # the user's own server never carries it
    login, mail_from, _, content = sent_to(relay_on, "rita@example.com")[-1]
    assert login == relay_on.login and mail_from == RELAY_FROM and f"From: {RELAY_FROM}".encode() in content
    code = code_sent_to(relay_on, "rita@example.com")
    assert code not in identity.code_hash  # only a hash of the code is kept
    url = f"/settings/mail/send-as/{identity.id}/verify"
    wrong = client.post(url, data={"code": "000000" if code != "000000" else "111111"}, headers={"HX-Request": "true"})
    assert wrong.status_code == 422 and "That code is not right." in wrong.get_data(as_text=True)
    assert client.post(url, data={"code": code}).status_code == 303
    db.session.expire_all()
    assert identity.verified
    assert "Verified" in client.get("/settings/mail/send-as/").get_data(as_text=True)


def test_without_a_relay_no_code_goes_through_the_users_server(rep, smtp_server):
    """The reported hole: a code mailed through the typed-in server can be read whatever the address."""
    _, client = rep
    user, password = smtp_server.new_user()
    before = len(smtp_server.messages)
    client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password, from_address="ceo@example.com"))
    identity = db.session.scalars(db.select(SendAs)).one()
    client.post(f"/settings/mail/send-as/{identity.id}/code")
    assert sent_to(smtp_server, "ceo@example.com", before) == []
    db.session.expire_all()
    assert not identity.verified and not identity.code_hash


def test_without_a_relay_the_address_waits_for_an_administrator(rep, smtp_server):
    _, client = rep
    user, password = smtp_server.new_user()
    assert "no outgoing relay" in client.get("/settings/mail/send-as/new").get_data(as_text=True)
    response = client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password), follow_redirects=True)
    assert "waiting for an administrator" in response.get_data(as_text=True)
    identity = db.session.scalars(db.select(SendAs)).one()
    assert identity.approval is Approval.PENDING and not identity.verified
    listing = client.get("/settings/mail/send-as/").get_data(as_text=True)
    assert "Waiting for approval" in listing and "no outgoing relay" in listing


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_administrator_approves_or_denies_a_waiting_address_in_setup(rep, smtp_server, mail_app, decision):
    _, client = rep
    user, password = smtp_server.new_user()
    client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password))
    identity = db.session.scalars(db.select(SendAs)).one()
    admin = admin_client(mail_app)
    setup = admin.get("/setup/addons/mail").get_data(as_text=True)
    assert "rita@example.com" in setup and "Rita Rep" in setup
    assert "1 Send Mail As request" in admin.get("/setup/").get_data(as_text=True)
    url = f"/setup/addons/mail/send-as/{identity.id}"
    fragment = admin.post(url, data={"decision": decision}, headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html
    assert "No Send Mail As address is waiting" in html and "<td>" not in html
    db.session.expire_all()
    assert identity.verified is (decision == "approve")
    assert identity.approval is (Approval.APPROVED if decision == "approve" else Approval.DENIED)
    assert identity.approved_by_id == users.find_user("admin@example.com").id
    listing = client.get("/settings/mail/send-as/").get_data(as_text=True)
    assert ("Verified" if decision == "approve" else "Denied by an administrator") in listing
    assert admin.post(url, data={"decision": "approve"}).status_code == 404  # decided once


def test_only_an_administrator_decides_and_only_on_waiting_addresses(rep, smtp_server, mail_app, relay_on):
    _, client = rep
    user, password = smtp_server.new_user()
    client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password))
    identity = db.session.scalars(db.select(SendAs)).one()
    assert identity.approval is Approval.NONE  # a relay: proven by the code, not by an administrator
    url = f"/setup/addons/mail/send-as/{identity.id}"
    assert client.post(url, data={"decision": "approve"}).status_code == 403
    assert admin_client(mail_app).post(url, data={"decision": "approve"}).status_code == 404
    db.session.expire_all()
    assert not identity.verified


def test_hosted_domain_address_is_offered_the_organisations_smtp_server(rep, mail_app):
    owner, client = rep
    org = db.session.get(OrgSettings, 1)
    org.hosted_domain, org.hosted_pop_host = "example.com", "pop.example.com"
    org.hosted_smtp_host, org.hosted_smtp_port, org.hosted_smtp_security = "out.example.com", 465, "ssl"
    db.session.commit()
    page = client.get("/settings/mail/send-as/new").get_data(as_text=True)
    assert 'value="rep@example.com"' in page and 'value="out.example.com"' in page and 'value="465"' in page
    other = client.post("/settings/mail/send-as/form", data={"from_address": "rep@elsewhere.example",
                                                            "security": "starttls"}, headers={"HX-Request": "true"})
    assert 'value="out.example.com"' not in other.get_data(as_text=True)
    same = client.post("/settings/mail/send-as/form", data={"from_address": "Rita@Example.com",
                                                           "security": "starttls"}, headers={"HX-Request": "true"})
    assert 'value="out.example.com"' in same.get_data(as_text=True)


def test_code_expires_and_attempts_are_limited(rep, smtp_server, mail_app, relay_on):
    _, client = rep
    user, password = smtp_server.new_user()
    client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password))
    identity = db.session.scalars(db.select(SendAs)).one()
    code = code_sent_to(relay_on, "rita@example.com")
    for _ in range(identities.CODE_MAX_ATTEMPTS):
        with pytest.raises(identities.VerifyError):
            identities.verify(identity, "999999" if code != "999999" else "888888")
    with pytest.raises(identities.VerifyError, match="Too many wrong codes"):
        identities.verify(identity, code)
    identities.send_code(mail_app.extensions["mail"], identity)
    new_code = code_sent_to(relay_on, "rita@example.com")
    identity.code_sent_at -= timedelta(seconds=identities.CODE_TTL_S + 1)
    db.session.commit()
    with pytest.raises(identities.VerifyError, match="expired"):
        identities.verify(identity, new_code)
    assert not identity.verified


def test_use_the_same_credentials_as_the_incoming_account(rep, smtp_server, mail_app):
    owner, client = rep
    user, password = smtp_server.new_user()
    box = mail_app.extensions["mail"].box
    db.session.add(MailAccount(user_id=owner.id, name="Work", email="rita@example.com", host="127.0.0.1", port=995,
                               security="ssl", username=user, password_encrypted=box.encrypt(password)))
    db.session.commit()
    page = client.post("/settings/mail/send-as/form", data={"from_address": "rita@example.com", "security": "starttls",
                                                           "use_incoming": "y"}, headers={"HX-Request": "true"})
    html = page.get_data(as_text=True)
    assert f"Signing in as <strong>{user}</strong>" in html and password not in html
    response = client.post("/settings/mail/send-as/new", data=form(smtp_server, "", "", use_incoming="y"))
    assert response.status_code == 303
    identity = db.session.scalars(db.select(SendAs)).one()
    assert identity.username == user and box.decrypt(identity.password_encrypted) == password


def test_use_incoming_without_such_an_account_is_an_inline_error(rep, smtp_server):
    _, client = rep
    response = client.post("/settings/mail/send-as/new", data=form(smtp_server, "", "", use_incoming="y"),
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "You have no POP3 account with this address." in response.get_data(as_text=True)


def test_outgoing_password_change_is_tested_before_it_is_kept(rep, smtp_server, mail_app):
    _, client = rep
    user, password = smtp_server.new_user()
    client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password))
    identity = db.session.scalars(db.select(SendAs)).one()
    url = f"/settings/mail/send-as/{identity.id}/password"
    wrong = client.post(url, data={"password": "not-it"}, headers={"HX-Request": "true"})
    assert wrong.status_code == 422 and "rejected the username or password" in wrong.get_data(as_text=True)
    smtp_server.add_user(user, "a-new-password")
    assert client.post(url, data={"password": "a-new-password"}).status_code == 303
    db.session.expire_all()
    assert mail_app.extensions["mail"].box.decrypt(identity.password_encrypted) == "a-new-password"


@pytest.mark.parametrize("field,value,message", [
    ("port", "65536", "The port must be between 1 and 65535."),
    ("host", "smtp://smtp.example.com", "not a URL"),
    ("from_address", "rita", "Enter an email address like ann@example.com."),
    ("from_name", "", "Enter the name your customers see."),
])
def test_bad_input_is_an_inline_error(rep, smtp_server, field, value, message):
    _, client = rep
    response = client.post("/settings/mail/send-as/new", data=form(smtp_server, "u", "p", **{field: value}),
                           headers={"HX-Request": "true"})
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_another_users_identity_is_a_404(rep, smtp_server, mail_app):
    _, client = rep
    user, password = smtp_server.new_user()
    client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password))
    identity = db.session.scalars(db.select(SendAs)).one()
    other = mail_app.test_client()
    other.post("/signin", data={"email": "admin@example.com", "password": PASSWORD})
    for method, url in [("get", f"/settings/mail/send-as/{identity.id}/verify"),
                        ("post", f"/settings/mail/send-as/{identity.id}/verify"),
                        ("post", f"/settings/mail/send-as/{identity.id}/code"),
                        ("get", f"/settings/mail/send-as/{identity.id}/password"),
                        ("post", f"/settings/mail/send-as/{identity.id}/delete")]:
        assert getattr(other, method)(url, data={"code": "1", "password": "x"}).status_code == 404
    assert "rita@example.com" not in other.get("/settings/mail/send-as/").get_data(as_text=True)


def test_the_list_and_the_form_say_add_a_send_mail_as_address(rep):
    """Issue 13.9: the Send Mail As list's add button and the form's heading read "Add a Send Mail As address"."""
    _, client = rep
    listing = client.get("/settings/mail/send-as/").get_data(as_text=True)
    assert re.search(r'<a role="button" href="/settings/mail/send-as/new">Add a Send Mail As address</a>', listing)
    page = client.get("/settings/mail/send-as/new").get_data(as_text=True)
    assert "<h1>Add a Send Mail As address</h1>" in page and "Add Send Mail As<" not in page


def test_placeholders_on_add_send_mail_as_are_examples_not_values(rep):
    """Issue 13.2: the server's placeholder says "for example smtp.example.com", not a value that looks typed."""
    _, client = rep
    placeholders = re.findall(r'placeholder="([^"]*)"', client.get("/settings/mail/send-as/new").get_data(as_text=True))
    assert "for example smtp.example.com" in placeholders
    assert all(p.startswith("for example ") for p in placeholders), placeholders
