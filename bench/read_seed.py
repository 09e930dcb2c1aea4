"""Seed an organisation for bench/bench_read.py (issue 14): fast, and valid for the models.

At `emails` emails (1,000,000 is the issue's size; everything else scales with it):
- 50 users in mixed modes: Public (some with Exclude Domains), Custom (with Share Email rows),
  Private with a settings row, and Private by having none; some consolidate customer mail into a
  folder or a label; one POP3 account each (the password encrypted with the app's key);
- emails / 10 Leads and Contacts (100,000 at 1M), one address row each, some Leads converted;
- `emails` emails, 1 in 8 sent (a few unsent drafts), 70 % read, about 2.3 participants each
  (From, To, and a Cc on 3 in 10) and 0.9 links each (9 in 10 customer mail, linked to one record),
  a small raw message each;
- record BIG_ID: 0.5 % of the emails (5,000 at 1M) from 20 owners in mixed modes, about half of
  them visible to the viewer (Public owners, and Custom owners who ticked Share Email on it);
- record HIDDEN_ID: 0.5 % of the emails, none of which the viewer may see: Private owners (with
  and without a settings row), Custom owners who did not share it, Public owners whose Exclude
  Domain is on every one of these emails.
The viewer (VIEWER_ID) is a Custom user with 1/50 of the mail.

The schema comes from the migrations (the caller runs them). The small tables go in through
SQLAlchemy; the big ones through the driver: COPY on PostgreSQL (with the foreign-key triggers
off for the load: the rows are valid by construction, and checked afterwards), executemany on
SQLite with loading pragmas (journal off, then WAL again as the app wants it). Each row carries
its search words (fulltext.index_text, as the models compute them); the full-text indexes are
built once after the load instead of row by row (FTS5 'rebuild', CREATE INDEX), from their own
definitions in the database (migration hfts1).
"""
from __future__ import annotations

import hashlib
import sqlite3
import time
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import insert
from werkzeug.security import generate_password_hash

from fulltext import index_text
from models import AddonSettings, Email, ExcludedDomain, MailAccount, OrgSettings, Record, User, db

USERS = 50
VIEWER_ID = 1
PASSWORD = "bench password"
BIG_ID, HIDDEN_ID = 1, 3  # two Leads
SPECIAL_SHARE = 0.005  # of the emails: on BIG_ID, and as many on HIDDEN_ID
BIG_OWNERS = list(range(2, 22))  # 20 owners, mixed modes
SEARCH_WORD = "invoice"  # in the subject of 1 email in 12 and in the body of 1 in 12 others
LEAD_WORD = "harbour"  # in the company of 1 record in 20
CHUNK_EMAILS = 20_000
BASE_DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)
SPAN_S = 2 * 365 * 24 * 3600  # the mail covers two years
DOMAIN = "northwind.example"
PARTNER = "partner.example"  # some Public users exclude it; Cc'd as mail.partner.example
WORDS = ["quote", "meeting", "order", "delivery", "contract", "renewal", "support", "question", "update",
         "proposal", "schedule", SEARCH_WORD]
SURNAMES = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
            "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke"]
FIRST = ["Ann", "Ben", "Cara", "Dan", "Eve", "Finn", "Gail", "Hugo", "Ida", "Jon", "Kim", "Leo", "Mia"]
COMPANY = ["North", "Blue", "Oak", "Iron", "Silver", "Green", "Stone", "Bright", "Swift", "Red", "Gold", "River",
           "Cedar", "Maple", "Summit", "Pine", "Lake", "Hill", "Star", LEAD_WORD.capitalize()]


def mode_of(user_id: int) -> str | None:
    """The seeded sharing mode of a user; None: no settings row (Private)."""
    if user_id == VIEWER_ID:
        return "custom"
    if user_id > 44:
        return None
    return ["public", "custom", "public", "private", "custom"][user_id % 5]


def excludes_partner(user_id: int) -> bool:
    return mode_of(user_id) == "public" and user_id % 2 == 0


def shares(user_id: int, record_id: int) -> bool:
    """Share Email rows: Custom users share 1 record in 97, and half of them the big record."""
    if mode_of(user_id) != "custom" or record_id == HIDDEN_ID:
        return False
    if record_id == BIG_ID:
        return user_id % 2 == 1
    return record_id % 97 == user_id % 97


# The hidden record's owners: Private (row or none), Custom not sharing it, Public excluding the partner.
HIDDEN_OWNERS = [u for u in range(2, USERS + 1)
                 if mode_of(u) in (None, "private", "custom") or excludes_partner(u)][::2]


def sizes(emails: int) -> dict:
    special = max(20, int(emails * SPECIAL_SHARE))
    return {"emails": emails, "records": max(100, emails // 10), "special": special,
            "every": emails // special}


def seed(url: str, emails: int) -> dict:
    """Fill the (migrated, empty) database; returns the sizes and how long each part took."""
    plan = sizes(emails)
    started = time.perf_counter()
    _small_tables(plan)
    db.session.commit()
    box = current_app.extensions["mail"].box
    db.session.execute(insert(MailAccount), [
        dict(id=u, user_id=u, name="Work", email=_user_address(u), host="pop.northwind.example", port=995,
             security="ssl", username=_user_address(u), password_encrypted=box.encrypt("not a real password"),
             leave_on_server=True, is_default=True) for u in range(1, USERS + 1)])
    db.session.commit()
    db.engine.dispose()
    loader = _PostgresLoader(url) if url.startswith("postgresql") else _SqliteLoader(url)
    with loader:
        loader.load("records", RECORD_COLUMNS, _records(plan, loader.date))
        loader.load("record_addresses", ("id", "record_id", "address", "is_primary"),
                    ((i, i, _record_address(i), True) for i in range(1, plan["records"] + 1)))
        loader.load("record_shares", ("owner_id", "record_id", "created_at"),
                    [(u, r, loader.date(BASE_DATE)) for u in range(1, USERS + 1) for r in _shared_candidates(u, plan)])
        for start in range(0, emails, CHUNK_EMAILS):
            raw, rows, participants, links = _email_chunk(plan, start, min(emails, start + CHUNK_EMAILS), loader)
            loader.load("raw_messages", ("id", "size", "sha256", "content"), raw)
            loader.load("emails", EMAIL_COLUMNS, rows)
            loader.load("email_participants", ("id", "email_id", "role", "address", "domain"), participants)
            loader.load("email_links", ("email_id", "record_id", "email_date", "owner_id"), links)
        loaded = time.perf_counter() - started
        loader.finish()
    return {**plan, "load_s": loaded, "seed_s": time.perf_counter() - started,
            "participants": loader.counts["email_participants"], "links": loader.counts["email_links"]}


def _user_address(u: int) -> str:
    return f"user{u}@{DOMAIN}"


def _record_address(i: int) -> str:
    return f"{FIRST[i % len(FIRST)].lower()}.{SURNAMES[i % len(SURNAMES)].lower()}{i}@{_company(i).lower()}.example"


def _company(i: int) -> str:
    return COMPANY[(i // 7) % len(COMPANY)] + "works"


def _small_tables(plan: dict) -> None:
    now = BASE_DATE
    password = generate_password_hash(PASSWORD)  # one hash for all: scrypt is slow on purpose
    db.session.execute(insert(User), [dict(id=u, email=_user_address(u), name=f"User {u}", password_hash=password,
                                           role="admin" if u == USERS else "standard", active=True, created_at=now)
                                      for u in range(1, USERS + 1)])
    # The migrations seed the organisation's row (hsh3): set it, whether there or not.
    db.session.merge(OrgSettings(id=1, mail_addon_enabled=True, timezone="UTC"))
    settings, excluded = [], []
    for u in range(1, USERS + 1):
        mode = mode_of(u)
        if mode is not None:
            settings.append(dict(user_id=u, sharing_mode=mode, consolidate=u % 3 != 2,
                                 consolidate_as="folder" if u % 3 == 0 else "label", consolidate_name="Customers",
                                 updated_at=now))
        if excludes_partner(u):
            excluded += [dict(user_id=u, domain=PARTNER), dict(user_id=u, domain=f"rival{u}.example")]
    db.session.execute(insert(AddonSettings), settings)
    db.session.execute(insert(ExcludedDomain), excluded)


def _shared_candidates(u: int, plan: dict) -> list[int]:
    if mode_of(u) != "custom":
        return []
    candidates = [BIG_ID] + list(range(u % 97 or 97, plan["records"] + 1, 97))
    return sorted({r for r in candidates if shares(u, r)})


RECORD_COLUMNS = ("id", "kind", "first_name", "last_name", "company", "email", "phone", "owner_id", "created_at",
                  "updated_at", "converted_contact_id", "converted_at", "search_text")


def _records(plan: dict, date):
    when = date(BASE_DATE)
    for i in range(1, plan["records"] + 1):
        lead = i % 2 == 1
        converted = lead and i % 20 == 9 and i + 1 <= plan["records"]  # 1 Lead in 10: converted into i + 1
        row = dict(first_name=FIRST[i % len(FIRST)], last_name=SURNAMES[i % len(SURNAMES)], company=f"{_company(i)} Ltd",
                   email=_record_address(i))
        yield (i, "lead" if lead else "contact", *row.values(), f"+44 20 7946 {i % 10000:04d}", i % USERS + 1,
               when, when, i + 1 if converted else None, when if converted else None,
               index_text(*(row[name] for name in Record.SEARCHED)))  # as models.Record's default computes it


EMAIL_COLUMNS = ("id", "owner_id", "account_id", "direction", "send_state", "send_error", "folder", "label",
                 "message_id", "in_reply_to", "references", "subject", "from_name", "from_address", "to_text",
                 "cc_text", "bcc_text", "reply_to_text", "date", "received_at", "snippet", "text_body", "html_body",
                 "size", "has_attachments", "recipient_count", "is_read", "parse_notes", "raw_id", "created_at",
                 "search_text")
SEARCHED_AT = [EMAIL_COLUMNS.index(name) for name in Email.SEARCHED]


def _email_chunk(plan: dict, start: int, stop: int, loader) -> tuple[list, list, list, list]:
    """Rows of emails start+1 .. stop (ids = position + 1), with their raw bytes, participants, links."""
    raw, rows, participants, links = [], [], [], []
    records, every, n_emails = plan["records"], plan["every"], plan["emails"]
    participant_id = loader.counts["email_participants"]
    for n in range(start, stop):
        email_id, k = n + 1, n // USERS  # k varies what n % USERS (the owner) would tie together
        when = loader.date(BASE_DATE + timedelta(seconds=SPAN_S * n // n_emails))
        special = n % every if n // every < plan["special"] else -1
        if special == 0:
            owner, record = BIG_OWNERS[(n // every) % len(BIG_OWNERS)], BIG_ID
        elif special == 1:
            owner, record = HIDDEN_OWNERS[(n // every) % len(HIDDEN_OWNERS)], HIDDEN_ID
        else:
            owner = n % USERS + 1
            record = None if k % 10 == 3 else (n * 31) % records + 1
            if record in (BIG_ID, HIDDEN_ID):
                record += 1
        me = _user_address(owner)
        customer = _record_address(record) if record else f"someone{n % 5000}@elsewhere{n % 40}.example"
        sent = special not in (0, 1) and k % 8 == 5
        draft = sent and k % 400 == 5
        cc = (f"pat{k % 9}@mail.{PARTNER}" if k % 2 or special == 1 else _user_address((n + 7) % USERS + 1)) \
            if (k * 3) % 10 < 3 or (special == 1 and excludes_partner(owner)) else None
        word, other = WORDS[k % len(WORDS)], WORDS[(k // 12) % len(WORDS)]
        subject = f"Re: {word} {other} {n}"
        body = (f"Hello, about the {other} we discussed: the {WORDS[(k // 3) % len(WORDS)]} is ready and "
                f"number {n} is attached below. Kind regards, {customer.split('@')[0]}")
        sender, to = (me, customer) if sent else (customer, me)
        folder, label = ("Sent", "") if sent else ("Inbox", "")
        settings_consolidate = mode_of(owner) is not None and owner % 3 != 2
        if record and not sent and settings_consolidate:
            folder, label = ("Customers", "") if owner % 3 == 0 else ("Inbox", "Customers")
        content = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{n}@bench.example>\r\n"
                   f"\r\n{body}\r\n").encode()
        raw.append((email_id, len(content), hashlib.sha256(content).hexdigest(), content))
        row = (email_id, owner, owner, "sent" if sent else "received",
               ("draft" if draft else "sent") if sent else "none", "", folder, label, f"<{n}@bench.example>",
               "", "", subject, f"User {owner}" if sent else SURNAMES[n % len(SURNAMES)], sender, to, cc or "", "", "", when,
               when, body[:120], body, None, len(content), False, 1 + bool(cc) if sent else 0,
               sent or (k * 7) % 10 < 7, "", email_id, when)
        rows.append(row + (index_text(*(row[i] for i in SEARCHED_AT)),))  # as models.Email's default computes it
        for role, address in (("from", sender), ("to", to), ("cc", cc)):
            if address:
                participant_id += 1
                participants.append((participant_id, email_id, role, address, address.rpartition("@")[2]))
        if record:
            links.append((email_id, record, when, owner))
    return raw, rows, participants, links


class _SqliteLoader:
    def __init__(self, url: str):
        self.path = url.removeprefix("sqlite:///")
        self.counts: dict[str, int] = {"email_participants": 0, "email_links": 0}

    @staticmethod
    def date(when: datetime) -> str:  # SQLAlchemy's SQLite DATETIME storage format, UTC (models.UTCDateTime)
        return when.strftime("%Y-%m-%d %H:%M:%S.%f")

    def __enter__(self):
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY",
                       "foreign_keys=OFF"):
            self.connection.execute(f"PRAGMA {pragma}")
        self.connection.execute("BEGIN")
        # The FTS5 tables are filled in one go at the end: their insert triggers wait till then.
        self.fts_triggers = self.connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%fts_insert'").fetchall()
        for name, _ in self.fts_triggers:
            self.connection.execute(f"DROP TRIGGER {name}")
        return self

    def load(self, table: str, columns: tuple, rows) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        cursor = self.connection.executemany(
            f'INSERT INTO {table} ({names}) VALUES ({", ".join("?" * len(columns))})', rows)
        self.counts[table] = self.counts.get(table, 0) + cursor.rowcount

    def finish(self) -> None:
        for name, sql in self.fts_triggers:
            fts = name.removesuffix("_insert")
            self.connection.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
            self.connection.execute(sql)
        self.connection.execute("COMMIT")
        problems = self.connection.execute("PRAGMA foreign_key_check").fetchmany(5)
        if problems:
            raise RuntimeError(f"seeded rows break foreign keys: {problems}")
        self.connection.execute("PRAGMA journal_mode=WAL")

    def __exit__(self, *exc):
        self.connection.close()


class _PostgresLoader:
    def __init__(self, url: str):
        self.conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        self.counts: dict[str, int] = {"email_participants": 0, "email_links": 0}

    @staticmethod
    def date(when: datetime) -> str:
        return when.strftime("%Y-%m-%d %H:%M:%S+00")

    def __enter__(self):
        import psycopg
        self.connection = psycopg.connect(self.conninfo)
        self.connection.execute("SET session_replication_role = replica")  # no FK triggers while loading
        # The GIN indexes of the search words are built once after the load (far faster than row by row).
        self.search_indexes = self.connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'ix_%_search'").fetchall()
        for name, _ in self.search_indexes:
            self.connection.execute(f"DROP INDEX {name}")
        return self

    def load(self, table: str, columns: tuple, rows) -> None:
        names = ", ".join(f'"{c}"' for c in columns)
        count = 0
        with self.connection.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        self.counts[table] = self.counts.get(table, 0) + count

    def finish(self) -> None:
        connection = self.connection
        connection.execute("SET session_replication_role = DEFAULT")
        connection.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in self.search_indexes:
            connection.execute(definition)
        for table in ("users", "org_settings", "records", "record_addresses", "raw_messages", "emails", "email_participants",
                      "mail_accounts"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT coalesce(max(id), 1) FROM {table}))")
        # The foreign keys the loader skipped, checked once now (a row that breaks one fails here).
        for child, column, parent in (("emails", "raw_id", "raw_messages"), ("emails", "owner_id", "users"),
                                      ("email_participants", "email_id", "emails"), ("email_links", "email_id", "emails"),
                                      ("email_links", "record_id", "records"), ("record_addresses", "record_id", "records"),
                                      ("records", "converted_contact_id", "records")):
            bad = connection.execute(f"SELECT count(*) FROM {child} c WHERE c.{column} IS NOT NULL AND NOT EXISTS "
                                     f"(SELECT 1 FROM {parent} p WHERE p.id = c.{column})").fetchone()[0]
            if bad:
                raise RuntimeError(f"{bad} rows of {child}.{column} point at no {parent}")
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")  # what autovacuum would have done by the time anyone reads

    def __exit__(self, *exc):
        self.connection.close()
