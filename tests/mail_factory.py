"""Emails for tests, stored straight through the models (no POP3 server, no sync engine).

`store_eml(owner, raw)` parses raw bytes with mail.inbound.parsing and stores what a fetch would;
`make_email(owner, ...)` builds a small message first. Both flush, never commit: the test client
(FreshContextClient) commits before each request.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from crm import records
from mail.inbound import matching
from mail.inbound.parsing import Address, parse
from models import (Attachment, Direction, Email, EmailLink, EmailParticipant, RawMessage, Record, SendState,
                    User, db)

CORPUS = Path(__file__).parent / "corpus"
BASE_DATE = datetime(2025, 3, 3, 9, 30, tzinfo=timezone.utc)


def _addresses(addresses: list[Address]) -> str:
    return ", ".join(formataddr((a.name, a.addr)) if a.name else a.addr for a in addresses)


def store_eml(owner: User, raw: bytes, *, folder: str = "Inbox", label: str = "", is_read: bool = False,
              direction: Direction = Direction.RECEIVED, send_state: SendState | None = None,
              record_ids: tuple[int, ...] = (), received_at: datetime | None = None) -> Email:
    """Parse `raw` and store it as `owner`'s email, with raw bytes, attachments, participants."""
    parsed = parse(raw, received_at or BASE_DATE)
    email = Email(
        owner_id=owner.id, direction=direction,
        send_state=send_state or (SendState.SENT if direction is Direction.SENT else SendState.NONE),
        folder=folder, label=label, message_id=parsed.message_id[:998],
        in_reply_to=(parsed.in_reply_to or "")[:998], references=" ".join(parsed.references),
        subject=parsed.subject, from_name=parsed.from_.name[:254] if parsed.from_ else "",
        from_address=parsed.from_.addr[:254].lower() if parsed.from_ else "",
        to_text=_addresses(parsed.to), cc_text=_addresses(parsed.cc), reply_to_text=_addresses(parsed.reply_to),
        date=parsed.date, snippet=parsed.snippet[:300], text_body=parsed.text, html_body=parsed.html,
        size=parsed.size, has_attachments=bool(parsed.attachments), is_read=is_read,
        parse_notes="\n".join(parsed.defects),
        raw=RawMessage(size=len(raw), sha256=parsed.sha256, content=raw),
    )
    db.session.add(email)
    db.session.flush()
    roles = [("from", parsed.from_)] if parsed.from_ else []
    roles += [("to", a) for a in parsed.to] + [("cc", a) for a in parsed.cc]
    for role, address in roles:
        addr = address.addr.strip().lower()[:254]
        db.session.add(EmailParticipant(email_id=email.id, role=role, address=addr,
                                        domain=addr.rpartition("@")[2][:253]))
    for a in parsed.attachments:
        db.session.add(Attachment(email_id=email.id, filename=a.filename[:255], content_type=a.content_type[:255],
                                  size=a.size, content_id=(a.content_id or "")[:255], inline=a.inline,
                                  content=a.content))
    for record_id in record_ids:
        db.session.add(EmailLink(email_id=email.id, record_id=record_id, email_date=email.date))
    db.session.flush()
    return email


def store_corpus(owner: User, name: str, **fields) -> Email:
    return store_eml(owner, (CORPUS / name).read_bytes(), **fields)


def build_message(*, subject: str = "Hello", sender: tuple[str, str] = ("Olivia Bennett", "olivia@brightwater.example"),
                  to: str = "Rita Rep <rep@example.com>", cc: str = "", text: str = "Hello there.",
                  html: str | None = None, date: datetime = BASE_DATE,
                  attachments: tuple[tuple[str, str, bytes], ...] = (),
                  inline_images: tuple[tuple[str, str, bytes], ...] = ()) -> bytes:
    """The bytes of a small message: text, optional html (with related cid images), attachments.

    attachments and inline_images are (filename or content-id, content type, bytes).
    """
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = formataddr(sender)
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{abs(hash((subject, date, text)))}@test.example>"
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
    matching.file_new_addresses(saved.record.id, saved.added)
    return saved.record


def convert_lead(lead: Record) -> Record:
    """Convert a Lead as the record page does; returns the Contact."""
    saved = records.convert(lead)
    matching.file_new_addresses(saved.record.id, saved.added)
    return saved.record
