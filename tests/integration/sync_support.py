"""Helpers shared by the mail sync tests (test_sync*, test_worker, test_corpus_fetch)."""
from __future__ import annotations

import itertools
import socketserver
import threading
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from crm import records, users
from mail.inbound import sync
from tests.mail_factory import save_record
from models import (FetchedMessage, Email, EmailLink, MailAccount, RawMessage, Record, RecordKind, Security, User,
                    db)
from tests.conftest import PASSWORD

_serial = itertools.count(1)
EPOCH = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)


def message(subject: str | None = None, *, sender: str = "ann@customer.example", to: str = "rep@example.com",
            cc: str | None = None, body: str | None = None, message_id: str | None = "auto",
            size: int = 0) -> bytes:
    """A plain message; each call is distinct (its own Message-ID, Date and subject).

    size pads the body to about that many bytes.
    """
    n = next(_serial)
    subject = subject or f"Message {n}"
    lines = [f"From: Sender {n} <{sender}>", f"To: {to}"]
    if cc:
        lines.append(f"Cc: {cc}")
    lines += [f"Subject: {subject}", f"Date: {format_datetime(EPOCH + timedelta(minutes=n))}"]
    if message_id == "auto":
        lines.append(f"Message-ID: <m{n}.{id(lines)}@customer.example>")
    elif message_id is not None:
        lines.append(f"Message-ID: <{message_id}>")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", ""]
    text = body if body is not None else f"Hello, this is message {n}.\n"
    raw = ("\r\n".join(lines) + "\r\n" + text.replace("\n", "\r\n")).encode()
    if size > len(raw):
        line = b"x" * 76 + b"\r\n"
        raw += line * ((size - len(raw)) // len(line) + 1)
    return raw


def owner(email: str = "rep@example.com") -> User:
    return users.find_user(email) or users.create_user(email, email.split("@")[0].title(), PASSWORD)


def add_account(app, dovecot, user: User, *, leave: bool = True, default: bool = True, name: str = "Work",
                mailbox: tuple[str, str] | None = None) -> tuple[MailAccount, str]:
    """A POP3 account of `user` on the test Dovecot (a new mailbox unless given); (account, login)."""
    login, password = mailbox or dovecot.new_user("sync")
    account = MailAccount(
        user_id=user.id, name=name, email=f"{login}@example.com", host=dovecot.host, port=dovecot.ssl_port,
        security=Security.SSL, username=login,
        password_encrypted=app.extensions["mail"].box.encrypt(password),
        leave_on_server=leave, is_default=default)
    db.session.add(account)
    db.session.commit()
    return account, login


def poll(app, account_id: int, **options) -> sync.PollResult:
    return sync.poll_account(app.extensions["mail"], account_id, **options)


def lead(address: str, *, kind: RecordKind = RecordKind.LEAD, owner_id: int | None = None,
         secondary: str = "") -> Record:
    record = records.new(kind)
    return save_record(record, {"last_name": address.split("@")[0].title(), "email": address,
                                 "owner_id": owner_id or owner().id, "secondary_email": secondary})


def emails_of(account_id: int) -> list[Email]:
    return list(db.session.scalars(select(Email).where(Email.account_id == account_id).order_by(Email.id)))


def raw_contents(account_id: int) -> list[bytes]:
    return list(db.session.scalars(select(RawMessage.content).join(Email, Email.raw_id == RawMessage.id)
                                   .where(Email.account_id == account_id).order_by(Email.id)))


def ledger(account_id: int) -> list[FetchedMessage]:
    return list(db.session.scalars(select(FetchedMessage).where(FetchedMessage.account_id == account_id)
                                   .order_by(FetchedMessage.id)))


def links_of(email_id: int) -> set[int]:
    return set(db.session.scalars(select(EmailLink.record_id).where(EmailLink.email_id == email_id)))


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def fresh() -> None:
    """Forget what this session holds: read what the poll committed, not cached objects.

    It also ends the session's transaction, which on SQLite holds the write lock (models.py):
    call it before another thread or process needs to write.
    """
    db.session.rollback()
    db.session.expire_all()


def peek(read):
    """read() in a transaction of its own, ended at once (see fresh)."""
    fresh()
    try:
        return read()
    finally:
        db.session.rollback()


def server_bodies(dovecot, login: str) -> list[bytes]:
    """The messages on the server for login, as files (new/ and cur/)."""
    box = dovecot.maildir(login)
    return [path.read_bytes() for sub in ("new", "cur") for path in sorted((box / sub).iterdir())]


def subjects(account_id: int) -> list[str]:
    return [e.subject for e in emails_of(account_id)]


class MailboxServer:
    """A small stateful POP3 server on loopback: a list of messages, UIDL optional, DELE applied at
    QUIT (as RFC 1939 says), and faults on demand. For what Dovecot cannot be made to do: a server
    without UIDL, one that shows a different window of messages each session (Gmail's recent:),
    one that drops the connection in the middle of a message."""

    host = "127.0.0.1"

    def __init__(self, messages: list[bytes] | None = None, *, uidl: bool = True) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.uidl = uidl
        self.commands: list[str] = []
        self.drop_during_retr: int | None = None  # message number whose RETR is cut off
        self._serial = itertools.count(1)
        for raw in messages or []:
            self.add(raw)
        self._server = socketserver.ThreadingTCPServer((self.host, 0), _MailboxHandler)
        self._server.daemon_threads = True
        self._server.mailbox = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def add(self, raw: bytes, uid: str | None = None) -> str:
        uid = uid or f"uid-{next(self._serial)}"
        self.messages.append((uid, raw))
        return uid

    def remove(self, uid: str) -> None:
        self.messages = [(u, raw) for u, raw in self.messages if u != uid]

    def __enter__(self) -> "MailboxServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _MailboxHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        box: MailboxServer = self.server.mailbox  # type: ignore[attr-defined]
        session = list(box.messages)  # a session sees the mailbox as it was at sign-in
        deleted: set[int] = set()
        self.wfile.write(b"+OK fake POP3 ready\r\n")
        for line in self.rfile:
            command, _, argument = line.strip().decode().partition(" ")
            command = command.upper()
            box.commands.append(f"{command} {argument}".strip())
            live = [(n, uid, raw) for n, (uid, raw) in enumerate(session, 1) if n not in deleted]
            if command in ("USER", "PASS", "NOOP", "RSET"):
                self._ok()
            elif command == "CAPA":
                self._multi(["USER"] + (["UIDL"] if box.uidl else []) + ["TOP"])
            elif command == "STAT":
                self._ok(f"{len(live)} {sum(len(raw) for _, _, raw in live)}")
            elif command == "LIST":
                self._multi([f"{n} {len(raw)}" for n, _, raw in live])
            elif command == "UIDL" and box.uidl:
                self._multi([f"{n} {uid}" for n, uid, _ in live])
            elif command in ("RETR", "TOP") and argument:
                number = int(argument.split()[0])
                raw = session[number - 1][1]
                if command == "TOP":
                    head, _, _ = raw.partition(b"\r\n\r\n")
                    raw = head + b"\r\n\r\n"
                if command == "RETR" and box.drop_during_retr == number:
                    self.wfile.write(b"+OK\r\n" + raw[:len(raw) // 2])
                    return  # the connection drops in the middle of the message
                self._message(raw)
            elif command == "DELE" and argument:
                deleted.add(int(argument))
                self._ok()
            elif command == "QUIT":
                doomed = {session[n - 1][0] for n in deleted}
                box.messages = [(uid, raw) for uid, raw in box.messages if uid not in doomed]
                self._ok("bye")
                return
            else:
                self.wfile.write(b"-ERR unknown command\r\n")

    def _ok(self, text: str = "") -> None:
        self.wfile.write(f"+OK {text}".rstrip().encode() + b"\r\n")

    def _multi(self, lines: list[str]) -> None:
        self.wfile.write(b"+OK\r\n" + b"".join(line.encode() + b"\r\n" for line in lines) + b".\r\n")

    def _message(self, raw: bytes) -> None:
        body = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
        stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in body[:-2].split(b"\r\n"))
        self.wfile.write(b"+OK\r\n" + stuffed + b"\r\n.\r\n")


def add_fake_account(app, server: MailboxServer, user: User, *, leave: bool = True,
                     default: bool = True) -> MailAccount:
    account = MailAccount(
        user_id=user.id, name="Fake", email="fake@example.com", host=server.host, port=server.port,
        security=Security.NONE, username="anyone", password_encrypted=app.extensions["mail"].box.encrypt("pw"),
        leave_on_server=leave, is_default=default)
    db.session.add(account)
    db.session.commit()
    return account
