"""Sessions that end (issue 10.3): sign-out, a password change, a deactivation and "Sign out
everywhere" end sessions server-side, copied and "keep me signed in" cookies included."""
from __future__ import annotations

from crm import users
from tests.conftest import PASSWORD

SESSION = "session"
REMEMBER = "remember_token"


def _signed_in(app, email: str, remember: bool = False):
    client = app.test_client()
    response = client.post("/signin", data={"email": email, "password": PASSWORD,
                                            **({"remember": "y"} if remember else {})})
    assert response.status_code == 303
    return client


def _copy(app, client, *names: str):
    """Another browser holding copies of these cookies of `client`."""
    other = app.test_client()
    for name in names:
        other.set_cookie(name, client.get_cookie(name).value)
    return other


def _is_signed_in(client) -> bool:
    return client.get("/leads/").status_code == 200


def test_signing_out_ends_the_session_for_a_copied_cookie_too(app, make_user):
    make_user("rep@example.com")
    client = _signed_in(app, "rep@example.com", remember=True)
    session_copy = _copy(app, client, SESSION)
    remember_copy = _copy(app, client, REMEMBER)
    assert _is_signed_in(session_copy) and _is_signed_in(remember_copy)
    assert client.post("/signout").status_code == 303
    assert not _is_signed_in(client)
    assert not _is_signed_in(_copy(app, session_copy, SESSION))
    assert not _is_signed_in(_copy(app, remember_copy, REMEMBER))


def test_signing_out_ends_only_that_session(app, make_user):
    make_user("rep@example.com")
    laptop, phone = _signed_in(app, "rep@example.com"), _signed_in(app, "rep@example.com")
    laptop.post("/signout")
    assert _is_signed_in(phone)


def test_a_password_change_ends_every_other_session_remember_me_included(app, make_user):
    make_user("rep@example.com")
    phone = _signed_in(app, "rep@example.com", remember=True)
    remembered = _copy(app, phone, REMEMBER)
    laptop = _signed_in(app, "rep@example.com")
    new = "a brand new password"
    response = laptop.post("/settings/", data={"current": PASSWORD, "password": new, "confirm": new})
    assert response.status_code == 303
    assert _is_signed_in(laptop)
    assert not _is_signed_in(phone) and not _is_signed_in(remembered)


def test_sign_out_everywhere_ends_every_other_session(app, make_user):
    make_user("rep@example.com")
    phone = _signed_in(app, "rep@example.com", remember=True)
    remembered = _copy(app, phone, REMEMBER)
    laptop = _signed_in(app, "rep@example.com")
    assert "Sign out everywhere" in laptop.get("/settings/").get_data(as_text=True)
    assert laptop.post("/settings/sessions/end").status_code == 303
    assert _is_signed_in(laptop)
    assert not _is_signed_in(phone) and not _is_signed_in(remembered)


def test_deactivation_ends_every_session_for_good(app, make_user):
    admin = make_user("admin@example.com", admin=True)
    rep = make_user("rep@example.com")
    phone = _signed_in(app, "rep@example.com", remember=True)
    remembered = _copy(app, phone, REMEMBER)
    users.set_active(rep, False, by=admin)
    users.set_active(rep, True, by=admin)  # reactivated: a new sign-in, not the old cookies
    assert not _is_signed_in(phone) and not _is_signed_in(remembered)
    assert _is_signed_in(_signed_in(app, "rep@example.com"))


def test_the_remember_cookie_is_httponly_lax_and_secure_with_secure_sessions(app_factory, make_user):
    app = app_factory(SESSION_COOKIE_SECURE=True)
    with app.app_context():
        make_user("rep@example.com")
        response = app.test_client().post("/signin", data={"email": "rep@example.com", "password": PASSWORD,
                                                           "remember": "y"})
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    for name in (SESSION, REMEMBER):
        assert "HttpOnly" in cookies[name] and "SameSite=Lax" in cookies[name] and "Secure" in cookies[name]
