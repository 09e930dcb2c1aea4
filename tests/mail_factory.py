"""Emails for tests, stored the way a fetch stores them (mail.inbound.store), without a POP3 server.

`store_eml(owner, raw)` parses raw bytes with mail.inbound.parsing and hands them to
mail.inbound.store.store, the function the fetcher's batches go through, so rows, participants,
attachments and raw bytes are exactly what a real fetch writes. A test then says where the email
sits (folder, label, read, sent) and which records it is linked to, as sending and matching would.
`make_email(owner, ...)` builds a small message first. Both flush, never commit: the test client
(FreshContextClient) commits before each request.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from crm import records
from mail.inbound import matching, store
from mail.inbound.parsing import parse
from mail.reading import addon
from models import Direction, Email, EmailLink, Record, SendState, User, db

CORPUS = Path(__file__).parent / "corpus"
BASE_DATE = datetime(2025, 3, 3, 9, 30, tzinfo=timezone.utc)


def store_eml(owner: User, raw: bytes, *, folder: str = "Inbox", label: str = "", is_read: bool = False,
              direction: Direction = Direction.RECEIVED, send_state: SendState | None = None,
              record_ids: tuple[int, ...] = (), received_at: datetime | None = None,
              account_id: int | None = None) -> Email:
    """Parse `raw` and store it as `owner`'s email through the fetcher's store, then place it."""
    parsed = parse(raw, received_at or BASE_DATE)
    email = store.store(owner.id, account_id, raw, parsed, crm_mailbox_id=None, settings=None)
    # What sending (mail.outbound.outbox) and consolidation set after storing.
    email.direction = direction
    email.send_state = send_state or (SendState.SENT if direction is Direction.SENT else SendState.NONE)
    email.folder, email.label, email.is_read = folder, label, is_read
    for record_id in record_ids:
        db.session.add(EmailLink(email_id=email.id, record_id=record_id, email_date=email.date,
                                 owner_id=email.owner_id))
    db.session.flush()
    return email


def store_corpus(owner: User, name: str, **fields) -> Email:
    return store_eml(owner, (CORPUS / name).read_bytes(), **fields)


def build_message(*, subject: str = "Hello", sender: tuple[str, str] = ("Olivia Bennett", "olivia@brightwater.example"),
                  to: str = "Rita Rep <rep@example.com>", cc: str = "", text: str = "Hello there.",
                  html: str | None = None, date: datetime = BASE_DATE,
                  attachments: tuple[tuple[str, str, bytes], ...] = (),
                  inline_images: tuple[tuple[str, str, bytes], ...] = (), message_id: str | None = None,
                  in_reply_to: str = "", references: str = "") -> bytes:
    """The bytes of a small message: text, optional html (with related cid images), attachments.

    attachments and inline_images are (filename or content-id, content type, bytes); message_id
    ("" for none), in_reply_to and references are header values as written.
    """
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = formataddr(sender)
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Date"] = format_datetime(date)
    if message_id is None:
        message_id = f"<{abs(hash((subject, date, text)))}@test.example>"
    if message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
        html_part = msg.get_payload()[1]
        for cid, ctype, data in inline_images:
            maintype, subtype = ctype.split("/")
            html_part.add_related(data, maintype=maintype, subtype=subtype, cid=f"<{cid}>")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def make_email(owner: User, *, minutes: int = 0, folder: str = "Inbox", label: str = "", is_read: bool | None = None,
               direction: Direction = Direction.RECEIVED, send_state: SendState | None = None,
               record_ids: tuple[int, ...] = (), **message) -> Email:
    """Store a built message dated `minutes` after BASE_DATE (message: build_message's arguments).

    Received mail starts unread, sent mail read, unless `is_read` says otherwise.
    """
    raw = build_message(date=BASE_DATE + timedelta(minutes=minutes), **message)
    is_read = direction is Direction.SENT if is_read is None else is_read
    return store_eml(owner, raw, folder=folder, label=label, is_read=is_read, direction=direction,
                     send_state=send_state, record_ids=record_ids)


def save_record(record: Record, data: dict) -> Record:
    """Save a Lead or Contact as the record pages do: the record, then its new addresses filed."""
    saved = records.save(record, data)
    addon.note_filed(None, saved.record.id, matching.file_new_addresses(saved.record.id, saved.added))
    return saved.record


def convert_lead(lead: Record) -> Record:
    """Convert a Lead as the record page does; returns the Contact."""
    saved = records.convert(lead)
    addon.note_filed(None, saved.record.id, matching.file_new_addresses(saved.record.id, saved.added))
    return saved.record
