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
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import event, insert  # noqa: E402

from app import create_app  # noqa: E402
from mail.reading import conversations, related  # noqa: E402
from mail.reading.mailbox import MailView  # noqa: E402
from models import (AddonSettings, Contact, Conversation, Email, EmailLink, EmailParticipant, ExcludedDomain,  # noqa: E402
                    RecordAddress, RecordShare, SharingMode, User, db)
from tests.pg import PostgresCluster  # noqa: E402

BIG, SMALL, PER_CONVERSATION, OWNERS, RUNS = 10_000, 10, 5, 20, 30
MODES = [SharingMode.PRIVATE, SharingMode.CUSTOM, SharingMode.PUBLIC, SharingMode.PUBLIC]
RESULTS = ROOT / "bench" / "RESULTS.md"
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
    db.session.execute(insert(User), [dict(id=i + 1, email=f"owner{i}@northwind.example", name=f"Owner {i}",
                                           password_hash="x", role="standard", active=True, created_at=BASE)
                                      for i in range(OWNERS + 3)])
    db.session.add_all([Contact(id=1, last_name="Big", email="big@customer.example", owner_id=1),
                        Contact(id=2, last_name="Small", email="small@customer.example", owner_id=1)])
    db.session.flush()
    db.session.add_all([RecordAddress(record_id=1, address="big@customer.example", is_primary=True),
                        RecordAddress(record_id=2, address="small@customer.example", is_primary=True)])
    for i in range(OWNERS):
        mode = MODES[i % len(MODES)]
        db.session.add(AddonSettings(user_id=i + 1, sharing_mode=mode))
        if mode is SharingMode.CUSTOM and i % 2:
            db.session.add_all([RecordShare(owner_id=i + 1, record_id=1), RecordShare(owner_id=i + 1, record_id=2)])
        if mode is SharingMode.PUBLIC and i % 3 == 0:
            db.session.add(ExcludedDomain(user_id=i + 1, domain="partner.example"))
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
    for table, data in ((Conversation, threads), (Email, rows), (EmailParticipant, participants), (EmailLink, links)):
        for start in range(0, len(data), 2000):
            db.session.execute(insert(table), data[start:start + 2000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:  # committed: statistics of a rolled-back ANALYZE are lost
            connection.exec_driver_sql("ANALYZE")


def measure(read) -> tuple[float, int, int]:
    """Median seconds for the first page, SQL statements per page, and rows on it."""
    statements: list[str] = []

    def count(*args):
        statements.append(args[2])

    times = []
    for run in range(RUNS):
        db.session.expire_all()
        if run == RUNS - 1:
            event.listen(db.engine, "before_cursor_execute", count)
        start = time.perf_counter()
        page = read()
        times.append(time.perf_counter() - start)
    event.remove(db.engine, "before_cursor_execute", count)
    return statistics.median(times), len(statements), len(page.items)


def run(url: str, label: str) -> list[dict]:
    instance = tempfile.mkdtemp(prefix="bench-conversations-")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "b", "MAIL_SECRET_KEY": "b", "INSTANCE_PATH": instance})
    results = []
    with app.app_context():
        upgrade()
        populate()
        viewer = db.session.get(User, VIEWER)
        cases = [("Email related list", lambda r: (lambda: related.list_context(viewer, r)["emails"]), (2, 1)),
                 ("Email tab", lambda u: (lambda: conversations.mailbox_conversations(db.session.get(User, u), MailView())),
                  (TAB_SMALL, TAB_BIG))]
        for name, reader, (small, big) in cases:
            small_s, small_q, small_rows = measure(reader(small))
            big_s, big_q, big_rows = measure(reader(big))
            result = dict(db=label, page=name, small_ms=small_s * 1000, big_ms=big_s * 1000, ratio=big_s / small_s,
                          small_queries=small_q, big_queries=big_q, small_rows=small_rows, big_rows=big_rows)
            print(f"{label}, {name}: small {result['small_ms']:.2f} ms ({small_q} queries, {small_rows} rows), "
                  f"big {result['big_ms']:.2f} ms ({big_q} queries, {big_rows} rows), ratio {result['ratio']:.2f}")
            results.append(result)
        db.engine.dispose()
    return results


def write(results: list[dict]) -> None:
    lines = [SECTION, "",
             f"First page grouped into conversations, median of {RUNS} runs. Related list: seen by a colleague, a "
             f"record with {BIG:,} emails in {BIG // PER_CONVERSATION:,} conversations from {OWNERS} owners in mixed "
             f"modes against one with {SMALL} emails in {SMALL // PER_CONVERSATION}. Email tab: a user with {BIG:,} "
             f"emails of their own in {BIG // PER_CONVERSATION:,} conversations against one with {SMALL}.",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on this machine (2 cores, shared). "
             "Rerun: `.venv/bin/python bench/bench_conversations.py`.", "",
             "| database | page | 10 emails | 10,000 emails | ratio (target <= 2) | SQL queries (10 / 10,000) | rows |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['db']} | {r['page']} | {r['small_ms']:.2f} ms | {r['big_ms']:.2f} ms | {r['ratio']:.2f} | "
                     f"{r['small_queries']} / {r['big_queries']} | {r['small_rows']} / {r['big_rows']} |")
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
        text = head + "\n".join(lines) + "\n" + tail
    else:
        text = text.rstrip() + "\n\n" + "\n".join(lines) + "\n"
    RESULTS.write_text(text)


def main() -> None:
    results = run("sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench.sqlite3"), "SQLite")
    with PostgresCluster() as cluster:
        results += run(cluster.create_database("bench_conversations"), "PostgreSQL")
    write(results)


if __name__ == "__main__":
    main()
