"""Settings > Mail > Send Mail As against a real SMTP server (aiosmtpd): test, code, verify, password."""
import re
from datetime import timedelta

import pytest

from mail.outbound import identities
from models import MailAccount, SendAs, db
from tests.conftest import PASSWORD


def form(smtp_server, user, password, **changes):
    data = {"from_name": "Rita Rep", "from_address": "rita@example.com", "host": smtp_server.host,
            "port": smtp_server.port, "security": "starttls", "username": user, "password": password}
    data.update(changes)
    return data


def code_sent_to(smtp_server, address):
    for _, _, rcpts, content in reversed(smtp_server.messages):
        if address in rcpts:
            return re.search(rb"verification code: (\d{6})", content).group(1).decode()
    raise AssertionError(f"no code sent to {address}")


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


def test_address_is_verified_by_the_mailed_code(rep, smtp_server):
    _, client = rep
    user, password = smtp_server.new_user()
    response = client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password))
    assert response.status_code == 303
    identity = db.session.scalars(db.select(SendAs)).one()
    assert not identity.verified and identity.code_hash and password not in identity.password_encrypted
    code = code_sent_to(smtp_server, "rita@example.com")
    assert code not in identity.code_hash  # only a hash of the code is kept
    url = f"/settings/mail/send-as/{identity.id}/verify"
    wrong = client.post(url, data={"code": "000000" if code != "000000" else "111111"}, headers={"HX-Request": "true"})
    assert wrong.status_code == 422 and "That code is not right." in wrong.get_data(as_text=True)
    assert client.post(url, data={"code": code}).status_code == 303
    db.session.expire_all()
    assert identity.verified
    assert "Verified" in client.get("/settings/mail/send-as/").get_data(as_text=True)


def test_code_expires_and_attempts_are_limited(rep, smtp_server, mail_app):
    _, client = rep
    user, password = smtp_server.new_user()
    client.post("/settings/mail/send-as/new", data=form(smtp_server, user, password))
    identity = db.session.scalars(db.select(SendAs)).one()
    code = code_sent_to(smtp_server, "rita@example.com")
    for _ in range(identities.CODE_MAX_ATTEMPTS):
        with pytest.raises(identities.VerifyError):
            identities.verify(identity, "999999" if code != "999999" else "888888")
    with pytest.raises(identities.VerifyError, match="Too many wrong codes"):
        identities.verify(identity, code)
    identities.send_code(mail_app.extensions["mail"], identity)
    new_code = code_sent_to(smtp_server, "rita@example.com")
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
    ("from_address", "rita", "Invalid email address."),
    ("from_name", "", "This field is required."),
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
