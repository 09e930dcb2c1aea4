"""Setup > Apps & Add-ons > Mail Add-on > Outgoing relay, against a real aiosmtpd: tested, kept encrypted."""
import pytest

from crm import users
from mail.outbound import relay
from models import OrgSettings, db
from tests.conftest import PASSWORD
from tests.smtp_relay import mail_cafile, smtp_relay  # noqa: F401  (fixtures)

URL = "/setup/addons/mail/relay"


@pytest.fixture
def admin_client(mail_app):
    users.create_user("admin@example.com", "Ada Admin", PASSWORD, admin=True)
    client = mail_app.test_client()
    client.post("/signin", data={"email": "admin@example.com", "password": PASSWORD})
    return client


def relay_form(server, login, password, **changes):
    data = {"relay-host": server.host, "relay-port": server.port, "relay-security": "starttls",
            "relay-username": login, "relay-password": password, "relay-from_address": "crm@northwind.example"}
    data.update(changes)
    return data


def test_relay_is_tested_before_it_is_kept_and_its_password_never_shown(admin_client, smtp_relay, mail_app):
    login, password = smtp_relay.new_user("relay")
    wrong = admin_client.post(URL, data=relay_form(smtp_relay, login, "not-it"), headers={"HX-Request": "true"})
    assert wrong.status_code == 422 and "rejected the username or password" in wrong.get_data(as_text=True)
    assert not relay.relay_configured()
    assert admin_client.post(URL, data=relay_form(smtp_relay, login, password)).status_code == 303
    assert relay.relay_configured()
    org = db.session.get(OrgSettings, 1)
    assert org.relay_host == smtp_relay.host and org.relay_username == login
    assert password not in org.relay_password_encrypted
    assert mail_app.extensions["mail"].box.decrypt(org.relay_password_encrypted) == password
    page = admin_client.get("/setup/addons/mail").get_data(as_text=True)
    assert password not in page and org.relay_password_encrypted not in page
    assert f'value="{login}"' in page and 'value="crm@northwind.example"' in page


def test_relay_test_reports_each_step_and_saves_nothing(admin_client, smtp_relay):
    login, password = smtp_relay.new_user("relay")
    response = admin_client.post(URL + "/test", data=relay_form(smtp_relay, login, password),
                                 headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    for step in ("Connected", "EHLO", "TLS established", "Signed in"):
        assert step in html
    assert password not in html
    assert not relay.relay_configured()


def test_blank_password_keeps_the_stored_one_and_remove_forgets_it(admin_client, smtp_relay, mail_app):
    login, password = smtp_relay.new_user("relay")
    admin_client.post(URL, data=relay_form(smtp_relay, login, password))
    test = admin_client.post(URL + "/test", data=relay_form(smtp_relay, login, ""), headers={"HX-Request": "true"})
    assert "Signed in" in test.get_data(as_text=True)
    changed = relay_form(smtp_relay, login, "", **{"relay-from_address": "noreply@northwind.example"})
    assert admin_client.post(URL, data=changed).status_code == 303
    org = db.session.get(OrgSettings, 1)
    assert org.relay_from_address == "noreply@northwind.example"
    assert mail_app.extensions["mail"].box.decrypt(org.relay_password_encrypted) == password
    assert admin_client.post(URL + "/delete").status_code == 303
    db.session.expire_all()
    assert not relay.relay_configured() and org.relay_password_encrypted == "" and org.relay_username == ""


@pytest.mark.parametrize("field,value,message", [
    ("relay-from_address", "", "Enter the From address"),
    ("relay-from_address", "crm", "Enter an email address like ann@example.com."),
    ("relay-host", "smtp://relay.example", "not a URL"),
    ("relay-port", "0", "The port must be between 1 and 65535."),
])
def test_bad_relay_input_is_an_inline_error(admin_client, smtp_relay, field, value, message):
    response = admin_client.post(URL, data=relay_form(smtp_relay, "u", "p", **{field: value}),
                                 headers={"HX-Request": "true"})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert not relay.relay_configured()


@pytest.mark.parametrize("url", [URL, URL + "/test", URL + "/delete"])
def test_only_administrators_set_the_relay(mail_app, smtp_relay, url):
    users.create_user("rep@example.com", "Rita Rep", PASSWORD)
    client = mail_app.test_client()
    client.post("/signin", data={"email": "rep@example.com", "password": PASSWORD})
    login, password = smtp_relay.new_user("relay")
    assert client.post(url, data=relay_form(smtp_relay, login, password)).status_code == 403
    assert not relay.relay_configured()
