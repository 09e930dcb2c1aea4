"""Mail sync benchmark (issue 4): our full poll against raw poplib, on a local Dovecot.

Usage: .venv/bin/python bench/bench_sync.py [--messages 5000] [--records 10000] [--skip-pg]
(root, as the tests: it starts its own Dovecot and PostgreSQL; not part of the tests).

(a) baseline: poplib UIDL + RETR of every message + email.message_from_bytes(policy.default);
(b) mail.inbound.sync.poll_account of the same mailbox (fetch, parse, match against the Leads and
    Contacts, store, commit) into SQLite and into PostgreSQL; target: at least half of (a);
(c) a second poll with nothing new, on twice as many messages left on the server; target < 1 s;
(d) peak memory of a poll that meets a 25 MB message, in a fresh subprocess; target < 150 MB.
"""
from __future__ import annotations

import argparse
import email
import json
import os
import poplib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, insert  # noqa: E402  (after the path set-up above)

from models import FetchedMessage, MailAccount, Record, RecordAddress, RecordKind, db  # noqa: E402
from tests.pg import PostgresCluster  # noqa: E402
from tests.servers import DovecotServer, _make_base  # noqa: E402

MESSAGE_BYTES = 3 * 1024
BIG_MESSAGE_BYTES = 25 * 1024 * 1024 - 64 * 1024  # just under the default limit: downloaded
SECRET = "bench mail secret key"


def small_message(n: int) -> bytes:
    """About MESSAGE_BYTES; one sender in two is a Lead or Contact."""
    sender = f"customer{n % 4000}@client{n % 97}.example" if n % 2 else f"someone{n}@elsewhere.example"
    head = (f"From: Customer {n} <{sender}>\r\nTo: Rita Rep <rep@example.com>\r\n"
            f"Cc: team{n % 5}@example.com\r\nSubject: Re: quote number {n}\r\n"
            f"Date: Mon, 1 Jan 2024 10:{n % 60:02d}:00 +0000\r\nMessage-ID: <bench{n}@client.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    line = f"Line of the message body of message {n}, as business mail has them.\r\n"
    body = line * ((MESSAGE_BYTES - len(head)) // len(line))
    return (head + body).encode()


def big_message() -> bytes:
    """A 25 MB message: a short text and one large base64 attachment."""
    import base64
    payload = os.urandom((BIG_MESSAGE_BYTES - 8192) // 78 * 57)  # base64: 57 bytes a 78-octet line
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    head = (b"From: Big <big@client1.example>\r\nTo: rep@example.com\r\nSubject: a big one\r\n"
            b"Message-ID: <big@client.example>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
            b"See attached.\r\n--b\r\nContent-Type: application/octet-stream\r\n"
            b'Content-Disposition: attachment; filename="big.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n')
    return head + encoded + b"--b--\r\n"


def baseline(dovecot: DovecotServer, login: str, password: str) -> tuple[float, int]:
    started = time.perf_counter()
    client = poplib.POP3(dovecot.host, dovecot.port, timeout=30)
    client.user(login)
    client.pass_(password)
    _, lines, _ = client.uidl()
    for line in lines:
        number = int(line.split()[0])
        _, body, _ = client.retr(number)
        email.message_from_bytes(b"\r\n".join(body) + b"\r\n", policy=policy.default)
    client.quit()
    return time.perf_counter() - started, len(lines)


def make_app(url: str, instance: str):
    from flask_migrate import upgrade

    from app import create_app
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "INSTANCE_PATH": instance,
                      "MAIL_SECRET_KEY": SECRET, "MAIL_ALLOW_LOCAL_SERVERS": True})
    with app.app_context():
        upgrade()
    return app


def seed(app, records: int, dovecot: DovecotServer, login: str, password: str) -> int:
    """The add-on on, a user, `records` Leads and Contacts, the account; returns its id."""
    from mail.org import set_mail_addon_enabled
    from crm.users import create_user
    from models import Security

    with app.app_context():
        set_mail_addon_enabled(True)
        user = create_user("rep@example.com", "Rita Rep", "correct horse battery")
        rows = [{"kind": RecordKind.LEAD if i % 2 else RecordKind.CONTACT, "last_name": f"Customer {i}",
                 "email": f"customer{i}@client{i % 97}.example", "owner_id": user.id} for i in range(records)]
        db.session.execute(insert(Record), rows)
        ids = db.session.execute(db.select(Record.id, Record.email)).all()
        db.session.execute(insert(RecordAddress), [{"record_id": i, "address": a, "is_primary": True}
                                                   for i, a in ids])
        account = MailAccount(user_id=user.id, name="Bench", email="rep@example.com", host=dovecot.host,
                              port=dovecot.port, security=Security.NONE, username=login,
                              password_encrypted=app.extensions["mail"].box.encrypt(password),
                              leave_on_server=True, is_default=True)
        db.session.add(account)
        db.session.commit()
        return account.id


def timed_poll(app, account_id: int):
    from mail.inbound.sync import poll_account
    with app.app_context():
        started = time.perf_counter()
        result = poll_account(app.extensions["mail"], account_id)
        return time.perf_counter() - started, result


def status_kb(field: str) -> int:
    """VmHWM (peak RSS) or VmRSS of this process. Not ru_maxrss: Linux carries the parent's
    peak over fork and exec, and it cannot be reset."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(url: str, instance: str, account_id: int, trace: bool) -> None:
    """Run in a fresh process: one poll; print peak RSS (and Python allocations if traced)."""
    import tracemalloc
    from app import create_app
    from mail.inbound.sync import poll_account
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "INSTANCE_PATH": instance,
                      "MAIL_SECRET_KEY": SECRET, "MAIL_ALLOW_LOCAL_SERVERS": True})
    with app.app_context():
        db.session.execute(db.select(1))
        before = status_kb("VmRSS")
        # Reset the peak: creating the app hashes a dummy password with scrypt (32 MB, freed).
        Path("/proc/self/clear_refs").write_text("5")
        if trace:
            tracemalloc.start()
        result = poll_account(app.extensions["mail"], account_id)
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    print(json.dumps({"rss_before_kb": before, "rss_peak_kb": status_kb("VmHWM"),
                      "traced_peak": peak, "fetched": result.fetched, "errors": result.errors}))


def memory(url: str, instance: str, account_id: int, trace: bool) -> dict:
    out = subprocess.run([sys.executable, __file__, "--memory-child", url, instance, str(account_id)]
                         + (["--trace"] if trace else []), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_backend(name: str, url: str, args, dovecot: DovecotServer) -> None:
    instance = tempfile.mkdtemp(prefix=f"instance-{name}-", dir=args.tmp)
    app = make_app(url, instance)
    login, password = dovecot.new_user(f"bench{name.lower()}")
    for n in range(args.messages):
        dovecot.deliver(login, small_message(n))
    account_id = seed(app, args.records, dovecot, login, password)
    # The baseline right before our poll, on the same mailbox: the machine's load varies.
    base_elapsed, count = baseline(dovecot, login, password)
    base_rate = count / base_elapsed
    print(f"(a) baseline before {name}: poplib UIDL + RETR + message_from_bytes of {count:,} messages of "
          f"{MESSAGE_BYTES / 1024:.0f} KiB in {base_elapsed:.2f} s: {base_rate:,.0f} messages/s")
    elapsed, result = timed_poll(app, account_id)
    rate = result.fetched / elapsed
    print(f"(b) {name}: full poll of {result.fetched:,} messages ({result.linked:,} linked, {args.records:,} Leads "
          f"and Contacts) in {elapsed:.2f} s: {rate:,.0f} messages/s, {rate / base_rate:.2f} x baseline "
          "(target >= 0.50)")
    for n in range(args.messages, 2 * args.messages):
        dovecot.deliver(login, small_message(n))
    timed_poll(app, account_id)
    again, result = timed_poll(app, account_id)
    print(f"(c) {name}: second poll, nothing new, {result.on_server:,} messages on the server: "
          f"{again:.3f} s (target < 1 s), fetched {result.fetched}")
    big_login, big_password = dovecot.new_user(f"big{name.lower()}")
    for n in range(3):
        dovecot.deliver(big_login, small_message(n))
    dovecot.deliver(big_login, big_message())
    with app.app_context():
        account = db.session.get(MailAccount, account_id)
        account.username = big_login
        account.password_encrypted = app.extensions["mail"].box.encrypt(big_password)
        db.session.execute(delete(FetchedMessage))  # download the big one again
        db.session.commit()
        db.engine.dispose()
    rss = memory(url, instance, account_id, trace=False)
    with app.app_context():
        db.session.execute(delete(FetchedMessage))  # download the big one again
        db.session.commit()
        db.engine.dispose()
    traced = memory(url, instance, account_id, trace=True)
    print(f"(d) {name}: poll meeting a {BIG_MESSAGE_BYTES / 2**20:.1f} MiB message: peak RSS "
          f"{rss['rss_peak_kb'] / 1024:.0f} MiB (process before the poll {rss['rss_before_kb'] / 1024:.0f} MiB; "
          f"target < 150 MB); Python allocations peak {traced['traced_peak'] / 2**20:.0f} MiB; "
          f"fetched {rss['fetched']}, errors {rss['errors'] or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    args.tmp = tempfile.mkdtemp(prefix="bench-sync-")
    dovecot = DovecotServer(_make_base("bench-sync-dovecot-"))
    dovecot.start()
    cluster = None if args.skip_pg else PostgresCluster().start()
    try:
        run_backend("SQLite", f"sqlite:///{args.tmp}/bench.sqlite3", args, dovecot)
        if cluster is not None:
            run_backend("PostgreSQL", cluster.create_database("bench"), args, dovecot)
    finally:
        dovecot.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(dovecot.base, ignore_errors=True)
        shutil.rmtree(args.tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        memory_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), "--trace" in sys.argv)
    else:
        main()
