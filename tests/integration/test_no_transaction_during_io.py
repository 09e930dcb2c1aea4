"""No database transaction is open while a web request waits on a mail server (DESIGN invariant 8).

A mute server accepts the connection and never says a word, so every request below waits for
the whole mail timeout. Meanwhile another request and the poller write: on SQLite, where every
transaction takes the write lock when it begins, they must not wait for that timeout; on
PostgreSQL no connection of the app may sit "idle in transaction" during the wait.
"""
import socket
import threading
import time

import pytest
from sqlalchemy import text

from mail.inbound import leases
from models import Contact, MailAccount, OrgSettings, SendAs, db
from tests.conftest import PASSWORD

OTHER_WRITE_BUDGET_S = 1.0  # far below the app's mail timeout (3 s in mail_app)


@pytest.fixture
def mute_server():
    """(port, accepted): a listener that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    accepted, held, stop = threading.Event(), [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
                accepted.set()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join(2)
    for sock in held:
        sock.close()
    listener.close()


def _account(user, box, port, **extra):
    account = MailAccount(user_id=user.id, name="Mute", email="rita@northwind.example", host="127.0.0.1", port=port,
                          security="none", username="rita", password_encrypted=box.encrypt("old"), **extra)
    db.session.add(account)
    return account


def _identity(user, box, port, verified=False):
    identity = SendAs(user_id=user.id, from_name="Rita Rep", from_address="rita@northwind.example", host="127.0.0.1",
                      port=port, security="none", username="rita", password_encrypted=box.encrypt("old"),
                      verified=verified)
    db.session.add(identity)
    return identity


def _pop3_form(port):
    return {"name": "Work", "email": "rita@northwind.example", "host": "127.0.0.1", "port": port, "security": "none",
            "username": "rita", "password": "secret-pw", "leave": "leave"}


def _smtp_form(port):
    return {"from_name": "Rita Rep", "from_address": "rita@northwind.example", "host": "127.0.0.1", "port": port,
            "security": "none", "username": "rita", "password": "secret-pw"}


def _request_for(case, user, box, port):
    """(url, form) of the request that talks to the mute server, after setting up what it needs."""
    if case == "account_test":
        return "/settings/mail/accounts/test", _pop3_form(port)
    if case == "account_create":
        return "/settings/mail/accounts/new", _pop3_form(port)
    if case == "account_password":
        account = _account(user, box, port)
        db.session.commit()
        return f"/settings/mail/accounts/{account.id}/password", {"password": "new-pw"}
    if case == "identity_test":
        return "/settings/mail/send-as/test", _smtp_form(port)
    if case == "identity_create":
        return "/settings/mail/send-as/new", _smtp_form(port)
    if case == "identity_password":
        identity = _identity(user, box, port)
        db.session.commit()
        return f"/settings/mail/send-as/{identity.id}/password", {"password": "new-pw"}
    if case == "identity_code":  # codes go through the organisation's relay: the mute server here
        identity = _identity(user, box, 995)
        org = db.session.get(OrgSettings, 1)
        org.relay_host, org.relay_port, org.relay_security = "127.0.0.1", port, "none"
        org.relay_from_address = "crm@northwind.example"
        db.session.commit()
        return f"/settings/mail/send-as/{identity.id}/code", {}
    assert case == "send"
    _account(user, box, 995, is_default=True)
    _identity(user, box, port, verified=True)
    contact = Contact(last_name="Bennett", email="olivia@brightwater.example", owner_id=user.id)
    db.session.add(contact)
    db.session.commit()
    return f"/compose/contacts/{contact.id}", {"to": contact.email, "subject": "Quote", "body": "Hello"}


def _idle_in_transaction() -> int:
    return db.session.scalar(text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"))


@pytest.mark.parametrize("case", ["account_test", "account_create", "account_password", "identity_test",
                                  "identity_create", "identity_password", "identity_code", "send"])
def test_a_silent_mail_server_never_holds_up_other_writes(rep, mail_app, mute_server, case):
    user, client = rep
    port, accepted = mute_server
    box = mail_app.extensions["mail"].box
    other = MailAccount(user_id=user.id, name="Other", email="other@northwind.example", host="127.0.0.1", port=995,
                        security="ssl", username="other", password_encrypted=box.encrypt("x"))
    db.session.add(other)
    db.session.commit()
    url, form = _request_for(case, user, box, port)
    second = mail_app.test_client()
    second.post("/signin", data={"email": user.email, "password": PASSWORD})
    responses = []

    def waiting_request():
        with mail_app.app_context():
            responses.append(client.post(url, data=form))

    thread = threading.Thread(target=waiting_request)
    thread.start()
    try:
        assert accepted.wait(5), "the request never reached the mail server"
        time.sleep(0.2)  # the request is now waiting for the server's first words
        if db.engine.dialect.name == "postgresql":
            db.session.commit()
            assert _idle_in_transaction() == 0
            db.session.commit()
        started = time.monotonic()
        assert second.post(f"/settings/mail/accounts/{other.id}/fetch").status_code == 303
        request_s = time.monotonic() - started
        started = time.monotonic()
        leases.claim_due_accounts("poller-during-test")
        poller_s = time.monotonic() - started
        still_waiting = thread.is_alive()
    finally:
        thread.join(15)
    assert request_s < OTHER_WRITE_BUDGET_S and poller_s < OTHER_WRITE_BUDGET_S, (request_s, poller_s)
    assert still_waiting, "the request should still have been waiting for the mute server"
    assert responses and responses[0].status_code in (200, 303, 422)
