"""Sign-in, the first run, sign-out, deactivation and the slow-down of password guessing."""
import time

import pytest

from crm import users
from tests.conftest import PASSWORD


def test_first_run_asks_to_create_the_administrator(client):
    response = client.get("/leads/")
    assert response.status_code == 302 and response.location.endswith("/setup-admin")
    page = client.get("/setup-admin").get_data(as_text=True)
    assert "Create the administrator" in page


def test_creating_the_administrator_signs_in_and_closes_the_first_run_page(client):
    response = client.post("/setup-admin", data={"name": "Grace", "email": " Grace@Example.COM ",
                                                 "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 303
    user = users.find_user("grace@example.com")
    assert user is not None and user.is_admin and user.email == "grace@example.com"
    assert client.get("/leads/").status_code == 200
    assert client.get("/setup-admin").status_code == 404


def test_administrator_form_errors_stay_beside_their_fields(client):
    response = client.post("/setup-admin", data={"name": "", "email": "not-an-address",
                                                 "password": "short", "confirm": "other"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert page.count('class="field-error"') >= 3
    assert users.count_users() == 0


def test_sign_in_with_right_and_wrong_password(client, make_user, auth):
    make_user("rep@example.com")
    wrong = auth.signin("rep@example.com", "nope-nope")
    assert wrong.status_code == 422
    assert "The email address or password is not right." in wrong.get_data(as_text=True)
    assert client.get("/leads/").status_code == 302
    assert auth.signin("REP@example.com ").status_code == 303
    assert client.get("/leads/").status_code == 200


def test_unknown_address_gets_the_same_answer_as_a_wrong_password(make_user, auth):
    make_user("rep@example.com")
    unknown = auth.signin("nobody@example.com", "whatever1").get_data(as_text=True)
    assert "The email address or password is not right." in unknown


def test_repeated_failures_slow_down_even_the_right_password(make_user, auth):
    make_user("rep@example.com")
    for _ in range(users.FREE_FAILURES):
        auth.signin("rep@example.com", "guess-guess")
    response = auth.signin("rep@example.com")  # the right password, but too soon
    assert response.status_code == 422
    assert "Too many failed sign-ins for this address" in response.get_data(as_text=True)


def test_waiting_out_the_slow_down_lets_the_right_password_in(app, make_user):
    make_user("rep@example.com")
    start = time.time()
    for _ in range(users.FREE_FAILURES):
        with pytest.raises(users.SignInError):
            users.authenticate("rep@example.com", "guess-guess", client="192.0.2.1", now_s=start)
    with pytest.raises(users.Throttled) as refused:
        users.authenticate("rep@example.com", PASSWORD, client="192.0.2.1", now_s=start + 1)
    assert refused.value.wait_s == users.FIRST_WAIT_S - 1
    later = start + users.FIRST_WAIT_S
    assert users.authenticate("rep@example.com", PASSWORD, client="192.0.2.1", now_s=later).email == "rep@example.com"


def test_failures_are_forgotten_after_an_hour(app, make_user):
    make_user("rep@example.com")
    start = time.time()
    for _ in range(users.FREE_FAILURES + 1):
        with pytest.raises(users.SignInError):
            users.authenticate("rep@example.com", "guess-guess", client="192.0.2.1", now_s=start)
    later = start + users.FAILURE_MEMORY_S + 1
    assert users.authenticate("rep@example.com", PASSWORD, client="192.0.2.1", now_s=later).email == "rep@example.com"


def test_open_redirect_after_sign_in_is_refused(client, make_user):
    make_user("rep@example.com")
    response = client.post("/signin?next=//evil.example/x", data={"email": "rep@example.com", "password": PASSWORD})
    assert response.status_code == 303 and "evil.example" not in response.location


def test_session_cookie_is_httponly_and_samesite_lax(client, make_user, auth):
    make_user("rep@example.com")
    response = auth.signin("rep@example.com")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_out_needs_a_post(client, admin):
    assert client.get("/signout").status_code == 405
    assert client.post("/signout").status_code == 303
    assert client.get("/leads/").status_code == 302


def test_deactivated_user_cannot_sign_in_and_their_session_ends(app, make_user, admin):
    rep = make_user("rep@example.com")
    other = app.test_client()
    other.post("/signin", data={"email": rep.email, "password": PASSWORD})
    assert other.get("/leads/").status_code == 200
    users.set_active(rep, False, by=admin)
    assert other.get("/leads/").status_code == 302
    response = other.post("/signin", data={"email": rep.email, "password": PASSWORD})
    assert "deactivated" in response.get_data(as_text=True)


def test_a_refused_sign_in_puts_the_focus_on_the_empty_password_without_javascript(make_user, auth):
    """Issue 13.11: the page comes back with the address kept and autofocus on the password, so the
    password is typed again at once (the browser honours autofocus on a page load)."""
    import re

    make_user("ann@example.com")
    page = auth.signin("ann@example.com", "wrong password").get_data(as_text=True)
    email = re.search(r'<input[^>]*id="email"[^>]*>', page).group(0)
    password = re.search(r'<input[^>]*id="password"[^>]*>', page).group(0)
    assert "autofocus" in password and "autofocus" not in email
    assert 'value="ann@example.com"' in email and "wrong password" not in page
    empty = auth.signin("", "").get_data(as_text=True)
    assert "autofocus" in re.search(r'<input[^>]*id="email"[^>]*>', empty).group(0)
    assert "Enter your email address." in empty and "Enter your password." in empty
