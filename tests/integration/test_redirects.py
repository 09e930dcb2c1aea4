"""Every redirect target or back link taken from a request stays on this site (issue 10.1)."""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest

from blueprints.web import safe_local_path
from tests.conftest import PASSWORD
from tests.integration.test_send_email import sender  # noqa: F401  (fixture)
from tests.mail_factory import make_email

SITE = "http://crm.example/"
# Each as the application receives it, after the query string is decoded once. Some carry
# percent signs still: a browser or a proxy may decode them once more.
HOSTILE = [
    "//evil.example/", "///evil.example/", "https://evil.example/", "http:evil.example", "HTTPS://evil.example",
    "javascript:alert(1)", " javascript:alert(1)", "evil.example", "/\\evil.example/", "\\\\evil.example",
    "/\t/evil.example/", "/\n/x", "/\r/x", "\t//evil.example", " //evil.example", "/\x00/evil.example",
    "/\x7f/evil.example", "/\x0b/evil.example", "/\u2028/x", "/\x85/x",
    "/%09/evil.example/", "/%0a/x", "/%0D%0ASet-Cookie:x=1", "/%5Cevil.example/", "/%5cevil.example/",
    "%2F%2Fevil.example", "/%2F/evil.example", "/%2f%2fevil.example", "/%252F/evil.example",
    "/%2509/evil.example/", "/%255Cevil.example/", "/%25%30%39/evil.example/", "/%00/x",
]
BENIGN = ["/leads/7", "/contacts/3?page=2", "/email/?q=hello%20world&folder=Inbox"]


def _stays_here(url: str) -> bool:
    resolved = urlsplit(urljoin(SITE, url))
    return (resolved.scheme, resolved.netloc) == ("http", "crm.example")


def _refused(response, value: str) -> bool:
    """A NUL byte is refused before any view (400, nowhere to go): nothing left to check."""
    if "\x00" not in value:
        return False
    assert response.status_code == 400 and "Location" not in response.headers and "HX-Redirect" not in response.headers
    return True


def _back_link(page: str) -> str:
    return re.search(r'<p class="crumbs"><a href="([^"]*)"', page).group(1).replace("&amp;", "&")


@pytest.mark.parametrize("value", HOSTILE)
def test_the_helper_gives_the_default_for_every_hostile_value(value):
    assert safe_local_path(value, "/home") == "/home"


@pytest.mark.parametrize("value", BENIGN)
def test_the_helper_keeps_a_path_of_this_site(value):
    assert safe_local_path(value, "/home") == value


@pytest.mark.parametrize("value", HOSTILE)
def test_sign_in_goes_home_for_a_hostile_next(client, make_user, value):
    make_user("rep@example.com")
    response = client.post("/signin", query_string={"next": value},
                           data={"email": "rep@example.com", "password": PASSWORD})
    assert _refused(response, value) or (response.status_code == 303 and response.location == "/")


def test_sign_in_follows_a_next_path_of_this_site(client, make_user):
    make_user("rep@example.com")
    response = client.post("/signin", query_string={"next": "/contacts/3?page=2"},
                           data={"email": "rep@example.com", "password": PASSWORD})
    assert response.location == "/contacts/3?page=2"


@pytest.mark.parametrize("value", HOSTILE)
def test_the_email_tab_back_link_ignores_a_hostile_back(rep, value):
    user, client = rep
    email = make_email(user)
    response = client.get(f"/email/{email.id}", query_string={"back": value})
    if _refused(response, value):
        return
    back = _back_link(response.get_data(as_text=True))
    assert back.startswith("/email/") and "evil" not in back and _stays_here(back)


@pytest.mark.parametrize("value", HOSTILE)
def test_the_reply_back_link_ignores_a_hostile_back(rep, value):
    user, client = rep
    email = make_email(user)
    response = client.get(f"/compose/reply/{email.id}", query_string={"back": value})
    assert _refused(response, value) or _back_link(response.get_data(as_text=True)) == f"/email/{email.id}"


@pytest.mark.parametrize("value", HOSTILE)
def test_sending_a_reply_never_redirects_off_the_site(sender, smtp_server, value):  # noqa: F811
    user, client, contact, _ = sender
    original = make_email(user, subject="Question", record_ids=(contact.id,))
    form = {"to": contact.email, "subject": "Re: Question", "body": "Answer"}
    plain = client.post(f"/compose/reply/{original.id}", query_string={"back": value}, data=form)
    htmx = client.post(f"/compose/reply/{original.id}", query_string={"back": value}, data=form,
                       headers={"HX-Request": "true"})
    if _refused(plain, value) and _refused(htmx, value):
        return
    assert plain.status_code == 303 and plain.location == f"/email/{original.id}"
    assert htmx.status_code == 200 and htmx.headers["HX-Redirect"] == f"/email/{original.id}"
