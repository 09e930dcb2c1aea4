"""Faults in the middle of a poll: the server goes away, the database refuses a commit, the process
is killed. Afterwards every message on the server is here exactly once, and in delete mode nothing
was deleted from the server that is not here."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from models import AccountState, Email, MailAccount, db
from tests.integration.sync_support import (MailboxServer, add_account, add_fake_account, count, emails_of, fresh,
                                            ledger, message, owner, poll, raw_contents)

ROOT = Path(__file__).resolve().parents[2]
KILL_TIMEOUT_S = 20

MODES = pytest.mark.parametrize("leave", [True, False], ids=["leave", "delete"])


def assert_exactly_once(account_id: int, sent: list[bytes]) -> None:
    """Every message sent is here once, byte for byte, and nothing else is."""
    fresh()
    assert sorted(raw_contents(account_id)) == sorted(sent)
    rows = ledger(account_id)
    assert len(rows) == len(sent) and len({row.email_id for row in rows}) == len(sent)


def assert_nothing_lost(dovecot, login: str, account_id: int, sent: list[bytes]) -> None:
    """Each message is still on the server or here (or both): deleting never ran ahead of storing."""
    fresh()
    here = set(raw_contents(account_id))
    on_server = {path.read_bytes() for sub in ("new", "cur") for path in (dovecot.maildir(login) / sub).iterdir()}
    assert set(sent) <= here | on_server


@MODES
def test_the_server_going_away_mid_batch_loses_and_doubles_nothing(mail_app, dovecot, leave):
    account, login = add_account(mail_app, dovecot, owner(), leave=leave)
    sent = [message() for _ in range(12)]
    for raw in sent:
        dovecot.deliver(login, raw)

    def stop_after_seven(done, total):
        if done == 7:
            dovecot.stop()

    try:
        broken = poll(mail_app, account.id, batch_size=5, progress=stop_after_seven)
    finally:
        dovecot.start()
    fresh()
    assert broken.error is not None and broken.error.kind in ("protocol", "refused", "network", "timeout", "tls")
    assert 5 <= broken.fetched < 12 and broken.deleted == 0
    assert db.session.get(MailAccount, account.id).state is AccountState.ERROR
    assert dovecot.count(login) == 12  # no QUIT, so not one DELE took effect
    assert_nothing_lost(dovecot, login, account.id, sent)

    result = poll(mail_app, account.id)
    assert result.ok and result.fetched == 12 - broken.fetched
    assert_exactly_once(account.id, sent)
    assert dovecot.count(login) == (12 if leave else 0)


@MODES
def test_a_connection_cut_inside_a_message_keeps_what_came_before(mail_app, leave):
    sent = [message(f"Message {n}") for n in range(4)]
    with MailboxServer(sent) as server:
        account = add_fake_account(mail_app, server, owner(), leave=leave)
        server.drop_during_retr = 3
        broken = poll(mail_app, account.id)
        fresh()
        assert broken.fetched == 2 and broken.error.kind == "protocol" and len(server.messages) == 4
        server.drop_during_retr = None
        result = poll(mail_app, account.id)
        assert result.fetched == 2
        assert_exactly_once(account.id, sent)
        assert len(server.messages) == (4 if leave else 0)


@pytest.fixture
def refuse_batch(mail_app):
    """refuse_batch(n): the database refuses the commit of the n-th batch from now (once).

    A batch is a transaction that wrote ledger rows."""
    state = {"left": None, "batch": False}

    def on_execute(connection, cursor, statement, parameters, context, executemany):
        state["batch"] = state["batch"] or statement.lstrip().startswith("INSERT INTO fetched_messages")

    def on_commit(connection):
        is_batch, state["batch"] = state["batch"], False
        if is_batch and state["left"] is not None:
            state["left"] -= 1
            if state["left"] == 0:
                state["left"] = None
                raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    def arm(n: int) -> None:
        state["left"] = n

    event.listen(db.engine, "after_cursor_execute", on_execute)
    event.listen(db.engine, "commit", on_commit)
    yield arm
    event.remove(db.engine, "commit", on_commit)
    event.remove(db.engine, "after_cursor_execute", on_execute)


@MODES
def test_a_refused_commit_loses_and_doubles_nothing(mail_app, dovecot, refuse_batch, leave):
    account, login = add_account(mail_app, dovecot, owner(), leave=leave)
    sent = [message() for _ in range(9)]
    for raw in sent:
        dovecot.deliver(login, raw)
    refuse_batch(2)
    broken = poll(mail_app, account.id, batch_size=3)
    fresh()
    assert broken.error.kind == "database" and broken.fetched == 3 and broken.deleted == 0
    account = db.session.get(MailAccount, account.id)
    assert account.state is AccountState.ERROR and "database refused" in account.last_error
    assert account.backoff_s == account.poll_interval_s
    assert count(Email, Email.account_id == account.id) == 3 and len(ledger(account.id)) == 3
    assert dovecot.count(login) == 9

    result = poll(mail_app, account.id, batch_size=3)
    assert result.ok and result.fetched == 6
    assert_exactly_once(account.id, sent)
    assert dovecot.count(login) == (9 if leave else 0)


@pytest.fixture
def refusing_trigger(mail_app):
    """On PostgreSQL, a deferred trigger that fails the COMMIT of a batch holding a 'refuse' message."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("a deferred constraint trigger is PostgreSQL's")
    db.session.execute(text("""
        CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.message_id LIKE 'refuse%' THEN RAISE EXCEPTION 'refused at commit'; END IF;
          RETURN NULL;
        END $$"""))
    db.session.execute(text("""
        CREATE CONSTRAINT TRIGGER refuse_marked AFTER INSERT ON fetched_messages
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_marked()"""))
    db.session.commit()
    yield
    db.session.rollback()
    db.session.execute(text("DROP TRIGGER refuse_marked ON fetched_messages"))
    db.session.execute(text("DROP FUNCTION refuse_marked()"))
    db.session.commit()


@MODES
def test_postgresql_refusing_a_batch_at_commit_time_loses_nothing(mail_app, dovecot, refusing_trigger, leave):
    account, login = add_account(mail_app, dovecot, owner(), leave=leave)
    sent = [message() for _ in range(3)] + [message(message_id="refuse-me@x.example")] + [message()]
    for raw in sent:
        dovecot.deliver(login, raw)
    broken = poll(mail_app, account.id, batch_size=2)
    fresh()
    assert broken.error.kind == "database" and broken.fetched == 2 and dovecot.count(login) == 5
    assert count(Email, Email.account_id == account.id) == 2
    db.session.execute(text("ALTER TABLE fetched_messages DISABLE TRIGGER refuse_marked"))
    db.session.commit()
    assert poll(mail_app, account.id).fetched == 3
    assert_exactly_once(account.id, sent)
    assert dovecot.count(login) == (5 if leave else 0)


CHILD = textwrap.dedent("""
    import json, sys, time
    from app import create_app
    from mail.inbound.sync import poll_account
    config = json.loads(sys.argv[1])
    app = create_app(config)
    def progress(done, total):
        print(done, flush=True)
        time.sleep(0.02)  # slow enough to be killed in the middle
    with app.app_context():
        poll_account(app.extensions["mail"], int(sys.argv[2]), batch_size=4, progress=progress)
    print("finished", flush=True)
""")


@MODES
def test_a_worker_killed_mid_poll_loses_and_doubles_nothing(mail_app, dovecot, leave):
    account, login = add_account(mail_app, dovecot, owner(), leave=leave)
    sent = [message() for _ in range(30)]
    for raw in sent:
        dovecot.deliver(login, raw)
    config = {key: mail_app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "MAIL_SECRET_KEY",
                                                     "MAIL_TLS_CA_FILE", "MAIL_ALLOW_LOCAL_SERVERS")}
    config["INSTANCE_PATH"] = mail_app.instance_path
    account_id = account.id
    fresh()  # no transaction (on SQLite, no write lock) held here while the child polls
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(config), str(account_id)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for line in child.stdout:
            if line.strip() == "14":  # in the middle of the fourth batch of four
                os.kill(child.pid, signal.SIGKILL)
                break
        child.wait(KILL_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    fresh()
    stored = count(Email, Email.account_id == account.id)
    assert 0 < stored < 30 and dovecot.count(login) == 30
    assert_nothing_lost(dovecot, login, account.id, sent)

    result = poll(mail_app, account.id)
    assert result.ok and result.fetched == 30 - stored
    assert_exactly_once(account.id, sent)
    assert dovecot.count(login) == (30 if leave else 0)
    assert [e.subject for e in emails_of(account.id)] == sorted((e.subject for e in emails_of(account.id)),
                                                                 key=lambda s: int(s.split()[1]))
