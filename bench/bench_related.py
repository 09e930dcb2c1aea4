"""Issue 5 benchmark: the first page of a record's Email related list, big record vs small record.

A record with 10,000 linked emails from 20 owners in mixed modes (Private, Custom with and without
Share Email, Public with and without Exclude Domains) against a record with 10 emails, in the same
run and the same database, on SQLite and on PostgreSQL (a throw-away cluster). Target: the big
record's first page costs at most twice the small one's, with the same number of SQL queries.

Run: .venv/bin/python bench/bench_related.py            (writes its figures into bench/RESULTS.md)
"""
from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta, timezone

from _timing import add_mixed_modes, add_users, bench_app, bulk_insert, small_big, write_section
from flask_migrate import upgrade

from mail.reading import related
from models import Contact, Email, EmailLink, EmailParticipant, RecordAddress, User, db
from tests.pg import PostgresCluster

BIG, SMALL, OWNERS, RUNS = 10_000, 10, 20, 30
SECTION = "## Email related list (issue 5)"


def populate() -> tuple[User, int, int]:
    """20 owners in mixed modes; a big record (10,000 emails) and a small one (10). Returns a viewer."""
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    add_users(OWNERS + 1, base)
    big = Contact(id=1, last_name="Big", email="big@customer.example", owner_id=1)
    small = Contact(id=2, last_name="Small", email="small@customer.example", owner_id=1)
    db.session.add_all([big, small])
    db.session.flush()
    db.session.add_all([RecordAddress(record_id=1, address=big.email, is_primary=True),
                        RecordAddress(record_id=2, address=small.email, is_primary=True)])
    add_mixed_modes(OWNERS, (1, 2))
    db.session.commit()
    rows, participants, links = [], [], []
    for n in range(BIG + SMALL):
        record = 1 if n < BIG else 2
        owner = n % OWNERS + 1
        customer = "big@customer.example" if record == 1 else "small@customer.example"
        rows.append(dict(id=n + 1, owner_id=owner, direction="received", send_state="none", send_error="",
                         folder="Inbox", label="", message_id=f"<{n}@bench>", in_reply_to="", references="",
                         subject=f"Message {n}", from_name="Customer", from_address=customer, to_text="",
                         cc_text="", bcc_text="", reply_to_text="", date=base + timedelta(minutes=n),
                         received_at=base, snippet="Hello there", text_body="Hello there", size=3000,
                         has_attachments=False, recipient_count=0, is_read=False, parse_notes="", created_at=base))
        participants += [dict(email_id=n + 1, role="from", address=customer, domain="customer.example"),
                         dict(email_id=n + 1, role="to", address=f"owner{owner - 1}@northwind.example",
                              domain="northwind.example")]
        if n % 7 == 0:
            participants.append(dict(email_id=n + 1, role="cc", address="pat@mail.partner.example",
                                     domain="mail.partner.example"))
        links.append(dict(email_id=n + 1, record_id=record, email_date=base + timedelta(minutes=n), owner_id=owner))
    bulk_insert(((Email, rows), (EmailParticipant, participants), (EmailLink, links)))
    return db.session.get(User, OWNERS + 1), 1, 2


def run(url: str, label: str) -> dict:
    with bench_app(url, "bench-related-").app_context():
        upgrade()
        viewer, big, small = populate()
        result = small_big(label, lambda record: related.list_context(viewer, record)["emails"], small, big, RUNS)
        db.engine.dispose()
    return result


def write(results: list[dict]) -> None:
    intro = [f"First page of the Email related list, seen by a colleague (not an owner), median of {RUNS} runs; "
             f"a record with {BIG:,} linked emails from {OWNERS} owners in mixed modes against one with {SMALL}.",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on this machine (2 cores). "
             "Rerun: `.venv/bin/python bench/bench_related.py`."]
    columns = ["database", "10 emails", "10,000 emails", "ratio (target <= 2)", "SQL queries (10 / 10,000)"]
    rows = [[r["db"], f"{r['small_ms']:.2f} ms", f"{r['big_ms']:.2f} ms", f"{r['ratio']:.2f}",
             f"{r['small_queries']} / {r['big_queries']}"] for r in results]
    write_section(SECTION, intro, columns, rows)


def main() -> None:
    results = [run("sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench.sqlite3"), "SQLite")]
    with PostgresCluster() as cluster:
        results.append(run(cluster.create_database("bench_related"), "PostgreSQL"))
    write(results)


if __name__ == "__main__":
    main()
