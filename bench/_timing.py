"""What the page benchmarks share: an app on a fresh database, owners in mixed sharing modes, the
median cost of a first page, and writing a section of bench/RESULTS.md."""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from sqlalchemy import event, insert  # noqa: E402

from app import create_app  # noqa: E402
from models import AddonSettings, ExcludedDomain, RecordShare, SharingMode, User, db  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
MODES = [SharingMode.PRIVATE, SharingMode.CUSTOM, SharingMode.PUBLIC, SharingMode.PUBLIC]
INSERT_BATCH_ROWS = 2000


def bench_app(url: str, prefix: str) -> Flask:
    """An app on `url` with its own instance folder; call `upgrade()` inside its context."""
    instance = tempfile.mkdtemp(prefix=prefix)
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "b", "MAIL_SECRET_KEY": "b",
                       "INSTANCE_PATH": instance})


def add_users(users: int, created_at) -> None:
    """Users 1..`users`, named Owner 0.. with addresses owner<i>@northwind.example."""
    db.session.execute(insert(User), [dict(id=i + 1, email=f"owner{i}@northwind.example", name=f"Owner {i}",
                                           password_hash="x", role="standard", active=True, created_at=created_at)
                                      for i in range(users)])


def add_mixed_modes(owners: int, record_ids: tuple[int, ...]) -> None:
    """The first `owners` users in mixed modes: Private, Custom (every other one sharing `record_ids`),
    Public (every third one excluding partner.example)."""
    for i in range(owners):
        mode = MODES[i % len(MODES)]
        db.session.add(AddonSettings(user_id=i + 1, sharing_mode=mode))
        if mode is SharingMode.CUSTOM and i % 2:
            db.session.add_all([RecordShare(owner_id=i + 1, record_id=r) for r in record_ids])
        if mode is SharingMode.PUBLIC and i % 3 == 0:
            db.session.add(ExcludedDomain(user_id=i + 1, domain="partner.example"))


def bulk_insert(tables: tuple) -> None:
    """Insert `(model, rows)` pairs in batches, commit, and ANALYZE on PostgreSQL."""
    for table, data in tables:
        for start in range(0, len(data), INSERT_BATCH_ROWS):
            db.session.execute(insert(table), data[start:start + INSERT_BATCH_ROWS])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:  # committed: statistics of a rolled-back ANALYZE are lost
            connection.exec_driver_sql("ANALYZE")


def measure(read: Callable, runs: int) -> tuple[float, int, int]:
    """Median seconds of `read()` (a first page) over `runs`, SQL statements per page, rows on it."""
    statements: list[str] = []

    def count(*args):
        statements.append(args[2])

    times = []
    for run in range(runs):
        db.session.expire_all()
        if run == runs - 1:
            event.listen(db.engine, "before_cursor_execute", count)
        start = time.perf_counter()
        page = read()
        times.append(time.perf_counter() - start)
    event.remove(db.engine, "before_cursor_execute", count)
    return statistics.median(times), len(statements), len(page.items)


def small_big(label: str, read: Callable, small, big, runs: int, **extra) -> dict:
    """Measure the small and the big case, print one line, and return the figures."""
    small_s, small_q, small_rows = measure(lambda: read(small), runs)
    big_s, big_q, big_rows = measure(lambda: read(big), runs)
    result = dict(db=label, small_ms=small_s * 1000, big_ms=big_s * 1000, ratio=big_s / small_s,
                  small_queries=small_q, big_queries=big_q, small_rows=small_rows, big_rows=big_rows, **extra)
    name = f", {extra['page']}" if "page" in extra else ""
    print(f"{label}{name}: small {result['small_ms']:.2f} ms ({small_q} queries, {small_rows} rows), "
          f"big {result['big_ms']:.2f} ms ({big_q} queries, {big_rows} rows), ratio {result['ratio']:.2f}")
    return result


def write_section(section: str, intro: list[str], columns: list[str], rows: list[list[str]]) -> None:
    """Put `section` (its heading, `intro` and a table) into bench/RESULTS.md, replacing an older one."""
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    table += ["| " + " | ".join(row) + " |" for row in rows]
    body = "\n".join([section, "", *intro, "", *table])
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if section in text:
        head, _, rest = text.partition(section)
        tail = rest[rest.find("\n## "):] if "\n## " in rest else ""
        text = head + body + "\n" + tail
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    RESULTS.write_text(text)
