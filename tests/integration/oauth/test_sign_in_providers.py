"""Setup > Mail Add-on > Sign-in providers: client IDs and secrets encrypted and never shown back,
the redirect URL and a guide per provider, endpoints checked; and the outbound guard on the token
endpoint."""
from __future__ import annotations

import pytest

from crm import users
from models import SignInProvider, db
from tests.conftest import PASSWORD, FreshContextClient
from tests.integration.oauth.helpers import consent

SECRET, CLIENT_ID = "GOCSPX-a-very-secret-value", "1234-abc.apps.googleusercontent.com"


@pytest.fixture
def admin_client(mail_app):
    users.create_user("admin@example.com", "Ada Admin", PASSWORD, admin=True)
    client = mail_app.test_client()
    client.post("/signin", data={"email": "admin@example.com", "password": PASSWORD})
    return client


def test_built_in_providers_are_set_up_encrypted_and_never_shown_back(admin_client, mail_app):
    page = admin_client.get("/setup/addons/mail/sign-in").get_data(as_text=True)
    assert "http://localhost/mail/oauth/callback" in page
    assert "https://mail.google.com/" in page and "access_type=offline" in page and "prompt=consent" in page
    assert "Internal" in page and "fewer than 100 users" in page and "expire after 7 days" in page
    assert "https://outlook.office.com/POP.AccessAsUser.All" in page and "offline_access" in page
    assert "https://outlook.office.com/SMTP.Send" in page and "personal Microsoft accounts" in page
    half = admin_client.post("/setup/addons/mail/sign-in/google", data={"google-client_id": CLIENT_ID})
    assert half.status_code == 422 and "Enter both the client ID and the client secret." in half.get_data(as_text=True)
    assert CLIENT_ID not in half.get_data(as_text=True)
    saved = admin_client.post("/setup/addons/mail/sign-in/google", data={"google-client_id": CLIENT_ID,
                                                                          "google-client_secret": SECRET})
    assert saved.status_code == 303
    row = db.session.scalars(db.select(SignInProvider)).one()
    box = mail_app.extensions["mail"].box
    assert (box.decrypt(row.client_id_encrypted), box.decrypt(row.client_secret_encrypted)) == (CLIENT_ID, SECRET)
    page = admin_client.get("/setup/addons/mail/sign-in").get_data(as_text=True)
    assert "Sign in with Google is set up." in page and SECRET not in page and CLIENT_ID not in page
    # A blank secret keeps the saved one.
    assert admin_client.post("/setup/addons/mail/sign-in/google", data={"google-client_id": "new-id"}).status_code == 303
    db.session.refresh(row)
    assert (box.decrypt(row.client_id_encrypted), box.decrypt(row.client_secret_encrypted)) == ("new-id", SECRET)


@pytest.mark.parametrize("field,value,sentence", [
    ("generic-token_url", "ftp://id.example.com/token", "The token endpoint must be a web address starting with https://."),
    ("generic-authorization_url", "id.example.com/auth", "The authorization endpoint must be a web address"),
    ("generic-client_secret", "", "Enter the client secret the provider gave this CRM."),
])
def test_a_generic_provider_needs_web_endpoints_and_its_client(admin_client, field, value, sentence):
    data = {"generic-name": "Keycloak", "generic-authorization_url": "https://id.example.com/auth",
            "generic-token_url": "https://id.example.com/token", "generic-scopes": "openid mail",
            "generic-client_id": "crm", "generic-client_secret": SECRET, field: value}
    response = admin_client.post("/setup/addons/mail/sign-in/new", data=data)
    assert response.status_code == 422 and sentence in response.get_data(as_text=True)
    assert SECRET not in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(SignInProvider)) == 0


def test_only_administrators_see_sign_in_providers(mail_app):
    users.create_user("rep@example.com", "Rita Rep", PASSWORD)
    client = mail_app.test_client()
    client.post("/signin", data={"email": "rep@example.com", "password": PASSWORD})
    assert client.get("/setup/addons/mail/sign-in").status_code == 403
    assert client.post("/setup/addons/mail/sign-in/new", data={}).status_code == 403


def test_the_guard_applies_to_the_token_endpoint(app_factory, oauth_server, oauth_dovecot):
    from mail.org import set_mail_addon_enabled

    app = app_factory(MAIL_ALLOW_LOCAL_SERVERS=False)
    app.test_client_class = FreshContextClient
    with app.app_context():
        set_mail_addon_enabled(True)
        registered = oauth_server.register_client(redirect_uris=["http://localhost/mail/oauth/callback"])
        box = app.extensions["mail"].box
        row = SignInProvider(key="custom-1", name="Local ID", authorization_url=oauth_server.authorization_url,
                             token_url=oauth_server.token_url, scopes="mail",
                             client_id_encrypted=box.encrypt(registered.client_id),
                             client_secret_encrypted=box.encrypt(registered.client_secret))
        db.session.add(row)
        users.create_user("rep@example.com", "Rita Rep", PASSWORD)
        db.session.commit()
        client = app.test_client()
        client.post("/signin", data={"email": "rep@example.com", "password": PASSWORD})
        user, password = oauth_server.new_user()
        start = client.post("/mail/oauth/accounts/start", headers={"HX-Request": "true"}, data={
            "provider_id": row.id, "name": "Work", "email": f"{user}@example.com", "host": "pop.example.com",
            "port": "995", "security": "ssl", "username": user, "leave": "leave"})
        location = consent(oauth_server, start.headers["HX-Redirect"], user, password)
        before = len(oauth_server.token_requests)
        back = client.get(location[len("http://localhost"):])
        assert back.status_code == 422 and "This server is not allowed" in back.get_data(as_text=True)
        assert len(oauth_server.token_requests) == before  # the code was never sent to a loopback address
