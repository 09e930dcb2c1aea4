"""Store fetched messages: raw bytes, the email rows, who they involve, attachments, record links.

Nothing here commits: the sync engine commits a whole batch together with its ledger rows, so an
email and the ledger's knowledge of it are saved (or lost) together. A batch costs one INSERT per
table and one address look-up, whatever its size: per-message round trips made a poll several
times slower than downloading the mail (bench/RESULTS.md).

A message too large to download becomes a headers-only email (an Incoming without raw bytes): it is listed in
the Email tab with the note TOO_LARGE_NOTE, matched and consolidated like any other, has no body
and no raw bytes (raw_id is None: only its headers were ever here), and its size is the server's.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import LargeBinary, bindparam, func, insert, update

from mail.inbound import matching, threads
from mail.inbound.parsing.large import Base64Body
from mail.inbound.parsing import Address, ParsedEmail
from queries import insert_many
from models import (AddonSettings, Attachment, ConsolidateAs, Direction, Email, EmailLink, EmailParticipant,
                    INBOX, MESSAGE_ID_CHARS, RawMessage, SendState, db, normalise_address, normalise_domain,
                    utcnow)

TOO_LARGE_NOTE = "too large: left on the server"
# Column widths (models.py): PostgreSQL refuses a longer value, SQLite would keep it. Cut here so
# that one odd header can never make a batch fail.
ADDRESS_CHARS = 254
DOMAIN_CHARS = 253
NAME_CHARS = 254
ATTACHMENT_TEXT_CHARS = 255
STREAM_BLOB_BYTES = 4 * 1024 * 1024  # a blob larger than this is written in chunks
SQLITE_CHUNK_BYTES = 1024 * 1024
# PostgreSQL rewrites the whole value at each append (n chunks cost about n^2 / 2 chunks of
# writing), so fewer chunks than SQLite; 2 MiB keeps a poll meeting a 25 MB message under 150 MB.
POSTGRESQL_CHUNK_BYTES = 2 * 1024 * 1024


@dataclass
class Incoming:
    """One message of a batch: its bytes (None when too large: headers only) and its parse."""

    raw: bytes | bytearray | None
    parsed: ParsedEmail
    size: int  # octets: len(raw), or the server's size of a message left there
    # Attachments (by index) whose content is still base64 in raw (mail.inbound.fetch): decoded as written.
    deferred: dict[int, Base64Body] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    email_id: int
    linked: bool  # linked to at least one Lead or Contact


def store(owner_id: int, account_id: int | None, raw: bytes, parsed: ParsedEmail, *, crm_mailbox_id: int | None,
          settings: AddonSettings | None) -> Email:
    """Add (no commit) one message: raw bytes, email, participants, attachments, record links.

    Links are made only when account_id is the owner's CRM mailbox; customer mail is then
    consolidated as the owner's settings ask. Returns the email (flushed: it has an id).
    Raises SQLAlchemyError if the database refuses a row; the caller rolls back.
    """
    [done] = store_many(owner_id, account_id, [Incoming(raw, parsed, len(raw))],
                        crm_mailbox_id=crm_mailbox_id, settings=settings)
    return db.session.get(Email, done.email_id)


def store_many(owner_id: int, account_id: int | None, messages: list[Incoming], *, crm_mailbox_id: int | None,
               settings: AddonSettings | None) -> list[Stored]:
    """Add (no commit) a batch of messages of one account; returns one Stored per message, in order.

    Raises SQLAlchemyError if the database refuses a row; the caller rolls back.
    """
    if not messages:
        return []
    # Only the CRM mailbox feeds records; the owner's other accounts fill the Email tab only.
    matching_on = crm_mailbox_id is not None and account_id == crm_mailbox_id
    by_address = matching.records_by_address({a for m in messages for a in m.parsed.participants()}) if matching_on else {}
    record_ids = [sorted({r for a in m.parsed.participants() for r in by_address.get(_address(a), ())})
                  for m in messages]
    with_raw = [m for m in messages if m.raw is not None]
    raw_ids = iter(insert_rows(RawMessage, [
        {"size": len(m.raw), "sha256": m.parsed.sha256, "content": m.raw} for m in with_raw]))
    now = utcnow()
    rows = []
    for message, records in zip(messages, record_ids):
        row = _email_row(owner_id, account_id, message, now)
        row["raw_id"] = next(raw_ids) if message.raw is not None else None
        _consolidate(row, bool(records), settings)
        rows.append(row)
    for row, conversation_id in zip(rows, threads.assign([_threading(m.parsed) for m in messages])):
        row["conversation_id"] = conversation_id
    email_ids = insert_rows(Email, rows)
    participants, attachments, links = [], [], []
    for email_id, message, row, records in zip(email_ids, messages, rows, record_ids):
        participants += _participant_rows(email_id, message.parsed)
        if message.raw is not None:
            attachments += _attachment_rows(email_id, message)
        # As matching.link_email makes them: the date and owner ride along for the related lists' index.
        links += [{"email_id": email_id, "record_id": record_id, "email_date": row["date"], "owner_id": row["owner_id"]}
                  for record_id in records]
    insert_rows(Attachment, attachments)
    for model, values in ((EmailParticipant, participants), (EmailLink, links)):
        if values:
            db.session.execute(insert(model), values)
    return [Stored(email_id, bool(records)) for email_id, records in zip(email_ids, record_ids)]


def insert_rows(model, rows: list[dict]) -> list[int]:
    """Insert rows of a model with an integer id in one round trip (a row with a big blob: its
    own); returns their ids, in order. Raises SQLAlchemyError."""
    streamed = {i for i, row in enumerate(rows) if _streams(row)}
    plain = [i for i in range(len(rows)) if i not in streamed]
    ids: dict[int, int] = {i: _insert_streamed(model, rows[i]) for i in sorted(streamed)}
    ids.update(zip(plain, insert_many(model, [rows[i] for i in plain])))
    return [ids[i] for i in range(len(rows))]


def _streams(row: dict) -> bool:
    content = row.get("content")
    return isinstance(content, Base64Body) or (content is not None and len(content) > STREAM_BLOB_BYTES)


def _insert_streamed(model, row: dict) -> int:
    """Insert a row whose blob is written in chunks: never a whole copy of it in the driver.

    SQLite copies a bound blob twice (50 MB for a 25 MB message): it gets a zeroblob, then the
    bytes through incremental blob I/O. libpq copies a parameter into its send buffer and keeps
    that buffer at its largest: PostgreSQL gets the bytes appended a chunk at a time (each append
    leaves a dead row version for vacuum; messages this large are rare).
    """
    content = row["content"]
    size = content.size if isinstance(content, Base64Body) else len(content)
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    first = func.zeroblob(size) if sqlite else b""
    row_id = db.session.execute(insert(model).values(**{**row, "content": first}).returning(model.id)).scalar_one()
    if sqlite:
        connection = db.session.connection().connection.driver_connection
        with connection.blobopen(model.__tablename__, "content", row_id) as blob:
            for chunk in _pieces(content, SQLITE_CHUNK_BYTES):
                blob.write(chunk)
    else:
        # Bound at execution, not in the statement: a cached statement would keep its chunk.
        append = (update(model).where(model.id == bindparam("row_id"))
                  .values(content=model.content.op("||")(bindparam("chunk", type_=LargeBinary))))
        for chunk in _pieces(content, POSTGRESQL_CHUNK_BYTES):
            db.session.execute(append, {"row_id": row_id, "chunk": chunk},
                               execution_options={"synchronize_session": False})
    return row_id


def _pieces(content: bytes | bytearray | Base64Body, size: int) -> Iterator[bytes]:
    if isinstance(content, Base64Body):
        yield from content.chunks(size)
        return
    with memoryview(content) as view:
        for start in range(0, len(view), size):
            yield bytes(view[start:start + size])


def _email_row(owner_id: int, account_id: int | None, message: Incoming, now) -> dict:
    parsed, sender = message.parsed, message.parsed.from_
    headers_only = message.raw is None
    notes = [TOO_LARGE_NOTE, *parsed.defects] if headers_only else parsed.defects
    return {
        "owner_id": owner_id, "account_id": account_id, "direction": Direction.RECEIVED,
        "send_state": SendState.NONE, "send_error": "", "folder": INBOX, "label": "",
        "message_id": parsed.message_id[:MESSAGE_ID_CHARS],
        "in_reply_to": (parsed.in_reply_to or "")[:MESSAGE_ID_CHARS], "references": " ".join(parsed.references),
        "subject": parsed.subject, "from_name": sender.name[:NAME_CHARS] if sender else "",
        "from_address": sender.addr[:ADDRESS_CHARS] if sender else "",
        "to_text": address_list(parsed.to), "cc_text": address_list(parsed.cc), "bcc_text": "",
        "reply_to_text": address_list(parsed.reply_to), "date": parsed.date, "received_at": now,
        "snippet": TOO_LARGE_NOTE if headers_only else parsed.snippet,
        "text_body": "" if headers_only else parsed.text, "html_body": None if headers_only else parsed.html,
        "size": message.size, "has_attachments": bool(parsed.attachments) and not headers_only,
        "recipient_count": 0, "is_read": False, "parse_notes": "\n".join(notes), "created_at": now,
    }


def _threading(parsed: ParsedEmail) -> threads.Threading:
    return threads.Threading(parsed.message_id, parsed.in_reply_to, tuple(parsed.references), parsed.subject,
                             frozenset(parsed.participants()), parsed.date)


def _consolidate(row: dict, linked: bool, settings: AddonSettings | None) -> None:
    """Customer mail (linked to a record) goes to one folder or carries one label, if asked."""
    if not linked or settings is None or not settings.consolidate or not settings.consolidate_name:
        return
    if settings.consolidate_as is ConsolidateAs.FOLDER:
        row["folder"] = settings.consolidate_name  # out of the Inbox
    else:
        row["label"] = settings.consolidate_name  # stays in the Inbox


def _participant_rows(email_id: int, parsed: ParsedEmail) -> list[dict]:
    roles = (("from", [parsed.from_] if parsed.from_ else []), ("to", parsed.to), ("cc", parsed.cc))
    rows, seen = [], set()
    for role, addresses in roles:
        for address in addresses:
            addr = _address(address.addr)
            if addr and (role, addr) not in seen:
                seen.add((role, addr))
                rows.append({"email_id": email_id, "role": role, "address": addr,
                             "domain": normalise_domain(addr.rpartition("@")[2])[:DOMAIN_CHARS]})
    return rows


def _attachment_rows(email_id: int, message: Incoming) -> list[dict]:
    return [{"email_id": email_id, "filename": part.filename[:ATTACHMENT_TEXT_CHARS] or "attachment",
             "content_type": part.content_type[:ATTACHMENT_TEXT_CHARS], "size": part.size,
             "content_id": (part.content_id or "")[:ATTACHMENT_TEXT_CHARS], "inline": part.inline,
             "content": message.deferred.get(index, part.content)}
            for index, part in enumerate(message.parsed.attachments)]


def address_list(addresses: Iterable[Address]) -> str:
    """Return addresses as one display line: 'Ann Lee <ann@x.example>, "Doe, Jo" <jo@y.example>'."""
    return ", ".join(_display(a) for a in addresses)


def _display(address: Address) -> str:
    if not address.name:
        return address.addr
    name = address.name
    if any(c in name for c in ',;:<>@"()[]\\'):  # would read as several addresses otherwise
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address.addr}>"


def _address(text: str) -> str:
    return normalise_address(text)[:ADDRESS_CHARS]
