"""Issue 12 benchmark: the first page of the Email related list and of the Email tab, grouped into
conversations, big against small, in the same run and database, on SQLite and PostgreSQL.

Related list: a record with 10,000 linked emails in 2,000 conversations (five messages each, from
two of 20 owners in mixed modes, the conversations overlapping in time) against a record with 10
emails in 2 conversations, seen by a colleague. Email tab: a user with 10,000 emails of their own
in 2,000 conversations against a user with 10. Target: the big first page costs at most twice the
small one's, with the same number of SQL queries.

Run: .venv/bin/python bench/bench_conversations.py        (writes its figures into bench/RESULTS.md)
"""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta, timezone

from _timing import add_mixed_modes, add_users, bench_app, bulk_insert, small_big, write_section
from flask_migrate import upgrade

from mail.reading import conversations, related
from mail.reading.mailbox import MailView
from models import Contact, Conversation, Email, EmailLink, EmailParticipant, RecordAddress, User, db
from tests.pg import PostgresCluster

BIG, SMALL, PER_CONVERSATION, OWNERS, RUNS = 10_000, 10, 5, 20, 30
SECTION = "## Conversations: related list and Email tab (issue 12)"
BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
VIEWER, TAB_BIG, TAB_SMALL = OWNERS + 1, OWNERS + 2, OWNERS + 3


def _email(n: int, owner: int, conversation: int, when: datetime, customer: str) -> dict:
    return dict(id=n, owner_id=owner, direction="received", send_state="none", send_error="", folder="Inbox",
                label="", message_id=f"<{n}@bench>", in_reply_to="", references="", subject=f"Order {conversation}",
                from_name="Customer", from_address=customer, to_text="", cc_text="", bcc_text="", reply_to_text="",
                date=when, received_at=BASE, snippet="Hello there", text_body="Hello there", size=3000,
                has_attachments=False, recipient_count=0, is_read=n % 3 == 0, parse_notes="", created_at=BASE,
                conversation_id=conversation)


def populate() -> None:
    add_users(OWNERS + 3, BASE)
    db.session.add_all([Contact(id=1, last_name="Big", email="big@customer.example", owner_id=1),
                        Contact(id=2, last_name="Small", email="small@customer.example", owner_id=1)])
    db.session.flush()
    db.session.add_all([RecordAddress(record_id=1, address="big@customer.example", is_primary=True),
                        RecordAddress(record_id=2, address="small@customer.example", is_primary=True)])
    add_mixed_modes(OWNERS, (1, 2))
    db.session.commit()
    rows, participants, links, threads = [], [], [], []
    n = 0
    # (record or None, owners, emails, first conversation id)
    sets = [(1, None, BIG, 1), (2, None, SMALL, 5_000), (None, TAB_BIG, BIG, 10_000), (None, TAB_SMALL, SMALL, 15_000)]
    for record, tab_owner, count, first in sets:
        customer = {1: "big@customer.example", 2: "small@customer.example"}.get(record, "tab@customer.example")
        for k in range(count):
            n += 1
            conversation = first + k // PER_CONVERSATION
            step = k % PER_CONVERSATION
            # Conversations overlap: each message of a conversation some 10 hours after the last.
            when = BASE + timedelta(minutes=(k // PER_CONVERSATION) * 3 + step * 600)
            owner = tab_owner or ((conversation + step % 2) % OWNERS + 1)
            rows.append(_email(n, owner, conversation, when, customer))
            participants += [dict(email_id=n, role="from", address=customer, domain="customer.example"),
                             dict(email_id=n, role="to", address=f"owner{owner - 1}@northwind.example",
                                  domain="northwind.example")]
            if n % 7 == 0:
                participants.append(dict(email_id=n, role="cc", address="pat@mail.partner.example",
                                         domain="mail.partner.example"))
            if record:
                links.append(dict(email_id=n, record_id=record, email_date=when, owner_id=owner))
            if step == 0:
                threads.append(dict(id=conversation, fallback_key=None, last_date=when))
    bulk_insert(((Conversation, threads), (Email, rows), (EmailParticipant, participants), (EmailLink, links)))


def run(url: str, label: str) -> list[dict]:
    with bench_app(url, "bench-conversations-").app_context():
        upgrade()
        populate()
        viewer = db.session.get(User, VIEWER)
        cases = [("Email related list", lambda record: related.list_context(viewer, record)["emails"], (2, 1)),
                 ("Email tab", lambda user: conversations.mailbox_conversations(db.session.get(User, user), MailView()),
                  (TAB_SMALL, TAB_BIG))]
        results = [small_big(label, read, small, big, RUNS, page=name) for name, read, (small, big) in cases]
        db.engine.dispose()
    return results


def write(results: list[dict]) -> None:
    intro = [f"First page grouped into conversations, median of {RUNS} runs. Related list: seen by a colleague, a "
             f"record with {BIG:,} emails in {BIG // PER_CONVERSATION:,} conversations from {OWNERS} owners in mixed "
             f"modes against one with {SMALL} emails in {SMALL // PER_CONVERSATION}. Email tab: a user with {BIG:,} "
             f"emails of their own in {BIG // PER_CONVERSATION:,} conversations against one with {SMALL}.",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on this machine (2 cores, shared). "
             "Rerun: `.venv/bin/python bench/bench_conversations.py`."]
    columns = ["database", "page", "10 emails", "10,000 emails", "ratio (target <= 2)", "SQL queries (10 / 10,000)",
               "rows"]
    rows = [[r["db"], r["page"], f"{r['small_ms']:.2f} ms", f"{r['big_ms']:.2f} ms", f"{r['ratio']:.2f}",
             f"{r['small_queries']} / {r['big_queries']}", f"{r['small_rows']} / {r['big_rows']}"] for r in results]
    write_section(SECTION, intro, columns, rows)


def main() -> None:
    results = run("sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench.sqlite3"), "SQLite")
    with PostgresCluster() as cluster:
        results += run(cluster.create_database("bench_conversations"), "PostgreSQL")
    write(results)


if __name__ == "__main__":
    main()
