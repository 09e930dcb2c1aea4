"""Setup (administrators only): Users and the Mail Add-on switch; mail pages wait for it."""
import pytest
from markupsafe import escape

from mail.org import ADDON_DISABLED_MESSAGE, set_mail_addon_enabled
from crm import users
from tests.conftest import PASSWORD

ADMIN_PAGES = ["/setup/", "/setup/users", "/setup/addons/mail"]
MAIL_PAGES = ["/email/", "/settings/mail/accounts"]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_setup_pages_are_a_403_page_for_standard_users(client, make_user, auth, url):
    make_user("admin@example.com", admin=True)
    make_user("rep@example.com")
    auth.signin("rep@example.com")
    response = client.get(url)
    assert response.status_code == 403
    assert "Only an administrator can open this page." in response.get_data(as_text=True)


def test_setup_link_shows_for_administrators_only(client, make_user, auth, admin):
    assert ">Setup<" in client.get("/leads/").get_data(as_text=True)
    make_user("rep@example.com")
    auth.signout()
    auth.signin("rep@example.com")
    nav = client.get("/leads/").get_data(as_text=True)
    assert ">Setup<" not in nav and ">Settings<" in nav and ">Email<" in nav


def test_administrator_adds_a_user_who_can_sign_in(client, admin, auth):
    response = client.post("/setup/users", data={"name": "Rita Rep", "email": "rita@example.com",
                                                 "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 303
    assert "Rita Rep" in client.get("/setup/users").get_data(as_text=True)
    auth.signout()
    assert auth.signin("rita@example.com").status_code == 303


def test_adding_a_user_twice_is_refused_beside_the_field(client, admin):
    data = {"name": "Ada", "email": "ADMIN@example.com", "password": PASSWORD, "confirm": PASSWORD}
    response = client.post("/setup/users", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "A user with this address already exists." in response.get_data(as_text=True)
    assert len(users.all_users()) == 1


def test_deactivate_and_activate_a_user(client, admin, make_user):
    rep = make_user("rep@example.com")
    asked = client.post(f"/setup/users/{rep.id}/deactivate")
    assert asked.status_code == 200 and "Deactivate Rep?" in asked.get_data(as_text=True)
    assert "no longer fetched" in asked.get_data(as_text=True)
    assert users.find_user("rep@example.com").active is True  # nothing changes until confirmed
    client.post(f"/setup/users/{rep.id}/deactivate", data={"confirmed": "yes"})
    assert users.find_user("rep@example.com").active is False
    client.post(f"/setup/users/{rep.id}/activate")
    assert users.find_user("rep@example.com").active is True


def test_administrator_cannot_deactivate_themself(client, admin):
    response = client.post(f"/setup/users/{admin.id}/deactivate", data={"confirmed": "yes"}, follow_redirects=True)
    assert "You cannot deactivate yourself." in response.get_data(as_text=True)
    assert users.find_user(admin.email).active is True


@pytest.mark.parametrize("url", MAIL_PAGES)
def test_mail_pages_answer_403_with_the_reason_while_the_addon_is_disabled(client, admin, url):
    response = client.get(url)
    assert response.status_code == 403
    assert str(escape(ADDON_DISABLED_MESSAGE)) in response.get_data(as_text=True)


@pytest.mark.parametrize("url", MAIL_PAGES)
def test_htmx_mail_requests_get_the_reason_as_a_fragment(client, admin, url):
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 403 and response.headers["HX-Retarget"] == "#messages"
    body = response.get_data(as_text=True)
    assert str(escape(ADDON_DISABLED_MESSAGE)) in body and "<html" not in body


def test_enabling_the_addon_opens_the_mail_pages(client, admin):
    assert "Configure Now" in client.get("/setup/addons/mail").get_data(as_text=True)
    assert client.post("/setup/addons/mail").status_code == 303
    page = client.get("/setup/addons/mail").get_data(as_text=True)
    assert "What each user does next" in page and "Add POP3 Account" in page
    for url in MAIL_PAGES:
        assert client.get(url).status_code == 200
    asked = client.post("/setup/addons/mail")  # disabling asks first, and says what stops
    assert asked.status_code == 200 and "Disable the Mail Add-on?" in asked.get_data(as_text=True)
    assert "no mail is fetched or sent" in asked.get_data(as_text=True)
    assert client.get("/email/").status_code == 200
    assert client.post("/setup/addons/mail", data={"confirmed": "yes"}).status_code == 303  # and off again
    assert client.get("/email/").status_code == 403


def test_record_page_explains_the_disabled_addon(client, admin):
    client.post("/contacts/new", data={"last_name": "Lee", "owner_id": admin.id})
    from models import Record, db
    record = db.session.scalars(db.select(Record)).one()
    page = client.get(f"/contacts/{record.id}").get_data(as_text=True)
    assert "an administrator must enable it first" in page
    set_mail_addon_enabled(True)
    assert "No emails with Lee yet." in client.get(f"/contacts/{record.id}").get_data(as_text=True)


def test_every_page_without_parameters_renders_for_an_administrator(app, client, admin):
    set_mail_addon_enabled(True)
    pages = [rule.rule for rule in app.url_map.iter_rules()
             if "GET" in rule.methods and not rule.arguments and rule.endpoint not in ("static", "auth.signin",
                                                                                        "auth.setup_admin")]
    assert len(pages) >= 10
    for url in pages:
        response = client.get(url, follow_redirects=True)
        assert response.status_code == 200, (url, response.status_code)


def test_setup_mail_addon_page_shows_the_organisation_settings(client, admin):
    page = client.get("/setup/addons/mail").get_data(as_text=True)
    assert "Allowed mail servers" in page and "Daily recipients per user" in page and "Time zone" in page
