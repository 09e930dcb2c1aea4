"""On SQLite, requests that only read take no write lock (issue 14): a page answers while another
connection holds the lock, and a GET that writes (opening unread mail marks it read) waits its turn
in a transaction of its own instead of failing with "database is locked".

SQLite only: PostgreSQL has no database-wide write lock (the tests are skipped there).
"""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from models import Email, Lead, db
from tests.mail_factory import make_email

BUSY_TIMEOUT_S = 10  # models._connection_settings: busy_timeout=10000
PROMPT_S = 2.0  # well under the busy timeout


@pytest.fixture
def sqlite_file(mail_app):
    url = mail_app.config["SQLALCHEMY_DATABASE_URI"]
    if not url.startswith("sqlite"):
        pytest.skip("SQLite's write lock; PostgreSQL has none")
    return url.removeprefix("sqlite:///")


class WriteLock:
    """Another connection holding SQLite's write lock (BEGIN IMMEDIATE, a write, not committed)
    until released, then committing."""

    def __init__(self, path: str):
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)

    def __enter__(self):
        self.connection.execute("BEGIN IMMEDIATE")
        self.connection.execute("UPDATE org_settings SET id = id")
        return self

    def release(self) -> None:
        self.connection.execute("COMMIT")

    def __exit__(self, *exc):
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")
        self.connection.close()


def timed_get(client, path: str):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def test_pages_answer_while_another_connection_holds_the_write_lock(rep, sqlite_file):
    user, client = rep
    lead = Lead(first_name="Lena", last_name="Locked", company="Acme", email="lena@acme.example", owner_id=user.id)
    db.session.add(lead)
    db.session.commit()
    lead_id = lead.id
    make_email(user, subject="Read while locked", is_read=True, record_ids=(lead_id,))
    db.session.commit()
    db.session.remove()
    with WriteLock(sqlite_file):
        for path in ("/email/", f"/leads/{lead_id}", f"/leads/{lead_id}/emails", "/leads/"):
            response, elapsed = timed_get(client, path)
            assert response.status_code == 200, path
            assert elapsed < PROMPT_S, (path, elapsed)
        assert "Read while locked" in client.get("/email/").get_data(as_text=True)


def test_opening_unread_mail_marks_it_read_after_a_writer_held_the_lock(rep, sqlite_file):
    user, client = rep
    email = make_email(user, subject="Open me")
    conversation_id, email_id = email.conversation_id, email.id
    db.session.commit()
    db.session.remove()
    lock = WriteLock(sqlite_file)
    with lock:
        # The writer commits while the GET has read its snapshot and is about to mark the mail read.
        releaser = threading.Timer(0.5, lock.release)
        releaser.start()
        response, elapsed = timed_get(client, f"/email/conversations/{conversation_id}")
        releaser.join()
    assert response.status_code == 200
    assert elapsed < BUSY_TIMEOUT_S
    assert db.session.get(Email, email_id).is_read is True
