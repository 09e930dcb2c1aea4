"""Issue 5 benchmark: the first page of a record's Email related list, big record vs small record.

A record with 10,000 linked emails from 20 owners in mixed modes (Private, Custom with and without
Share Email, Public with and without Exclude Domains) against a record with 10 emails, in the same
run and the same database, on SQLite and on PostgreSQL (a throw-away cluster). Target: the big
record's first page costs at most twice the small one's, with the same number of SQL queries.

Run: .venv/bin/python bench/bench_related.py            (writes its figures into bench/RESULTS.md)
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
from mail import related  # noqa: E402
from models import (AddonSettings, Contact, Email, EmailLink, EmailParticipant, ExcludedDomain, RecordAddress,  # noqa: E402
                    RecordShare, SharingMode, User, db)
from tests.pg import PostgresCluster  # noqa: E402

BIG, SMALL, OWNERS, RUNS = 10_000, 10, 20, 30
MODES = [SharingMode.PRIVATE, SharingMode.CUSTOM, SharingMode.PUBLIC, SharingMode.PUBLIC]
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Email related list (issue 5)"


def populate() -> tuple[User, int, int]:
    """20 owners in mixed modes; a big record (10,000 emails) and a small one (10). Returns a viewer."""
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    db.session.execute(insert(User), [dict(id=i + 1, email=f"owner{i}@northwind.example", name=f"Owner {i}",
                                           password_hash="x", role="standard", active=True, created_at=base)
                                      for i in range(OWNERS + 1)])
    big = Contact(id=1, last_name="Big", email="big@customer.example", owner_id=1)
    small = Contact(id=2, last_name="Small", email="small@customer.example", owner_id=1)
    db.session.add_all([big, small])
    db.session.flush()
    db.session.add_all([RecordAddress(record_id=1, address=big.email, is_primary=True),
                        RecordAddress(record_id=2, address=small.email, is_primary=True)])
    for i in range(OWNERS):
        mode = MODES[i % len(MODES)]
        db.session.add(AddonSettings(user_id=i + 1, sharing_mode=mode))
        if mode is SharingMode.CUSTOM and i % 2:
            db.session.add_all([RecordShare(owner_id=i + 1, record_id=1), RecordShare(owner_id=i + 1, record_id=2)])
        if mode is SharingMode.PUBLIC and i % 3 == 0:
            db.session.add(ExcludedDomain(user_id=i + 1, domain="partner.example"))
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
    for table, data in ((Email, rows), (EmailParticipant, participants), (EmailLink, links)):
        for start in range(0, len(data), 2000):
            db.session.execute(insert(table), data[start:start + 2000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    return db.session.get(User, OWNERS + 1), 1, 2


def measure(viewer: User, record_id: int) -> tuple[float, int, int]:
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
        page = related.list_context(viewer, record_id)["emails"]
        times.append(time.perf_counter() - start)
    event.remove(db.engine, "before_cursor_execute", count)
    return statistics.median(times), len(statements), len(page.items)


def run(url: str, label: str) -> dict:
    instance = tempfile.mkdtemp(prefix="bench-related-")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "b", "MAIL_SECRET_KEY": "b", "INSTANCE_PATH": instance})
    with app.app_context():
        upgrade()
        viewer, big, small = populate()
        small_s, small_q, small_rows = measure(viewer, small)
        big_s, big_q, big_rows = measure(viewer, big)
        db.engine.dispose()
    result = dict(db=label, small_ms=small_s * 1000, big_ms=big_s * 1000, ratio=big_s / small_s,
                  small_queries=small_q, big_queries=big_q, big_rows=big_rows, small_rows=small_rows)
    print(f"{label}: small {result['small_ms']:.2f} ms ({small_q} queries, {small_rows} rows), "
          f"big {result['big_ms']:.2f} ms ({big_q} queries, {big_rows} rows), ratio {result['ratio']:.2f}")
    return result


def write(results: list[dict]) -> None:
    lines = [SECTION, "",
             f"First page of the Email related list, seen by a colleague (not an owner), median of {RUNS} runs; "
             f"a record with {BIG:,} linked emails from {OWNERS} owners in mixed modes against one with {SMALL}.",
             f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on this machine (2 cores). "
             "Rerun: `.venv/bin/python bench/bench_related.py`.", "",
             "| database | 10 emails | 10,000 emails | ratio (target <= 2) | SQL queries (10 / 10,000) |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['db']} | {r['small_ms']:.2f} ms | {r['big_ms']:.2f} ms | {r['ratio']:.2f} | "
                     f"{r['small_queries']} / {r['big_queries']} |")
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
        text = head + "\n".join(lines) + "\n" + tail
    else:
        text = text.rstrip() + "\n\n" + "\n".join(lines) + "\n"
    RESULTS.write_text(text)


def main() -> None:
    results = [run("sqlite:///" + os.path.join(tempfile.mkdtemp(), "bench.sqlite3"), "SQLite")]
    with PostgresCluster() as cluster:
        results.append(run(cluster.create_database("bench_related"), "PostgreSQL"))
    write(results)


if __name__ == "__main__":
    main()
