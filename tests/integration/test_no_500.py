"""No 500 on any input (issue 10.7): every route of app.url_map with ids past 64 bits, every GET
with hostile query values, and every field of every form on every page with hostile values."""
from __future__ import annotations

from html.parser import HTMLParser

import pytest

from crm import users
from models import Contact, Lead, MailAccount, SendAs, SignInProvider, db
from tests.conftest import PASSWORD
from tests.integration.test_send_email import sender  # noqa: F401  (fixture)
from tests.mail_factory import make_email, save_record

HUGE = "100000000000000000000"  # past 64 bits
HOSTILE = ["\x00", "a\x00b", "Hi\x0bthere", "Hi\x0cthere", "Hi\x85there", "Hi\u2028there", HUGE, "-1",
           "pässwörd-漢字", "x" * 300]
# Ending the test's own session would only test the sign-in page from then on.
SKIPPED = {"static", "auth.signout", "settings.sessions_end"}


class Forms(HTMLParser):
    """The POST forms of a page: (action, {field: value as the page fills it in})."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str | None, dict[str, str]]] = []
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            posts = (a.get("method") or "get").lower() == "post" or a.get("hx-post")
            self.forms.append(((a.get("action") or a.get("hx-post")) if posts else "GET", {}))
        elif not self.forms or self.forms[-1][0] == "GET" or not a.get("name"):
            return
        elif tag == "input" and a.get("type") not in ("file", "submit"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                self.forms[-1][1].setdefault(a["name"], "")
            else:
                self.forms[-1][1][a["name"]] = a.get("value") or ""
        elif tag in ("textarea", "select"):
            self.forms[-1][1].setdefault(a["name"], "")
            self._select = a["name"] if tag == "select" else None
        elif tag == "option" and self._select and ("selected" in a or not self.forms[-1][1].get(self._select)):
            self.forms[-1][1][self._select] = a.get("value") or ""


@pytest.fixture
def world(mail_app, smtp_server):
    """An administrator signed in, with a Lead, a Contact, an email, a mail account and an
    identity, so each route reaches its real work; the values of its URL arguments."""
    admin = users.create_user("admin@example.com", "Ada Admin", PASSWORD, admin=True)
    rep = users.create_user("rep@example.com", "Rita Rep", PASSWORD)
    box = mail_app.extensions["mail"].box
    lead = Lead(first_name="Olivia", last_name="Bennett", company="Brightwater", email="olivia@bw.example",
                owner_id=admin.id)
    contact = Contact(last_name="Ortiz", email="dan@partner.example", owner_id=admin.id)
    account = MailAccount(user_id=admin.id, name="Work", email="ada@northwind.example", host="127.0.0.1",
                          port=995, security="ssl", username="ada", password_encrypted=box.encrypt("x"),
                          is_default=True)
    login, password = smtp_server.new_user()
    identity = SendAs(user_id=admin.id, from_name="Ada", from_address="ada@northwind.example",
                      host=smtp_server.host, port=smtp_server.port, security="starttls", username=login,
                      password_encrypted=box.encrypt(password), verified=True)
    provider = SignInProvider(key="custom-1", name="Local ID", authorization_url="https://id.example.com/auth",
                              token_url="https://id.example.com/token", scopes="mail",
                              client_id_encrypted=box.encrypt("crm"), client_secret_encrypted=box.encrypt("s"))
    db.session.add_all([lead, contact, account, identity, provider])
    db.session.commit()
    save_record(lead, {})
    email = make_email(admin, subject="Question", record_ids=(lead.id,))
    db.session.commit()
    client = mail_app.test_client()
    assert client.post("/signin", data={"email": admin.email, "password": PASSWORD}).status_code == 303
    ids = {"record_id": lead.id, "email_id": email.id, "account_id": account.id, "identity_id": identity.id,
           "user_id": rep.id, "attachment_id": 1, "change_id": 1, "kind": "leads", "action": "activate",
           "key": "google", "provider_id": provider.id, "conversation_id": email.conversation_id}
    return mail_app, client, ids


def _rules(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint not in SKIPPED]
    return sorted(rules, key=lambda r: ("delete" in r.endpoint or "deactivate" in r.rule, r.rule))


def _url(rule, ids, **override) -> str:
    return rule.build({arg: override.get(arg, ids[arg]) for arg in rule.arguments}, append_unknown=False)[1]


def _check(response, what: str) -> None:
    assert response.status_code < 500, f"{response.status_code} for {what!r}"


def test_ids_past_64_bits_are_a_404_on_every_route(world):
    app, client, ids = world
    for rule in _rules(app):
        int_args = [arg for arg in rule.arguments if arg not in ("kind", "action", "key")]
        if not int_args:
            continue
        url = _url(rule, ids, **{arg: HUGE for arg in int_args})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method)
            assert response.status_code == 404, f"{method} {url}: {response.status_code}"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_query_values_on_every_page(world, value):
    app, client, ids = world
    query = {name: value for name in ("q", "page", "folder", "label", "unread", "back", "next", "all", "images",
                                      "inline", "kind", "mode", "state", "code", "error")}
    for rule in _rules(app):
        if "GET" in rule.methods:
            url = _url(rule, ids)
            _check(client.get(url, query_string=query), f"GET {url} {value}")
            _check(client.get(url, query_string=query, headers={"HX-Request": "true"}), f"htmx GET {url} {value}")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_in_every_form_field(world, value):
    app, client, ids = world
    for rule in _rules(app):
        if "GET" not in rule.methods:
            continue
        url = _url(rule, ids)
        parser = Forms()
        parser.feed(client.get(url).get_data(as_text=True))
        for action, fields in parser.forms:
            if action == "GET" or any(skip in (action or "") for skip in ("/signout", "/sessions/end")):
                continue
            for name in [n for n in fields if n != "csrf_token"]:
                data = {**fields, name: value}
                _check(client.post(action or url, data=data), f"POST {action or url} {name}={value!r}")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_in_the_sign_in_form(app, make_user, value):
    make_user("rep@example.com")
    for data in ({"email": value, "password": PASSWORD}, {"email": "rep@example.com", "password": value},
                 {"email": f"rep{value}@example.com", "password": value}):
        _check(app.test_client().post("/signin", data=data), f"sign-in {data}")


def test_a_non_ascii_smtp_password_signs_in(smtp_server, mail_cafile):
    from mail.guard import GuardPolicy
    from mail.outbound import smtp

    smtp_server.add_user("jose", "contraseña-çß-漢字")
    settings = smtp.SmtpSettings(host=smtp_server.host, port=smtp_server.port, security="starttls",
                                 username="jose", password="contraseña-çß-漢字", cafile=mail_cafile)
    report = smtp.test_identity(settings, GuardPolicy(allow_local=True))
    assert report.ok, report.error


@pytest.mark.parametrize("char", ["\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\x1e"])
def test_a_reply_subject_with_any_line_break_is_an_error_beside_the_field(sender, smtp_server, char):  # noqa: F811
    user, client, contact, _ = sender
    original = make_email(user, subject="Question", record_ids=(contact.id,))
    before = len(smtp_server.messages)
    response = client.post(f"/compose/reply/{original.id}", data={"to": contact.email, "subject": f"Re:{char}x",
                                                                 "body": "Answer"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "This field cannot contain a line break." in page
    assert page.index('name="subject"') < page.index("cannot contain a line break") and len(smtp_server.messages) == before


def test_a_nul_byte_is_a_400_that_says_why(world):
    app, client, ids = world
    for response in (client.get("/leads/", query_string={"q": "a\x00b"}),
                     client.get("/email/", query_string={"q": "\x00"}),
                     client.post(f"/leads/{ids['record_id']}/edit", data={"last_name": "Lee\x00", "owner_id": "1"})):
        assert response.status_code == 400 and "NUL byte" in response.get_data(as_text=True)
