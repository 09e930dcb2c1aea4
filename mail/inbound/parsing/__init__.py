"""Turn the raw bytes of one email into a ParsedEmail, whatever those bytes are.

`parse` never raises: a message we cannot read well is still stored (its raw bytes are kept
unchanged elsewhere), with `defects` saying what was imperfect. MIME structure comes from the
standard library parser with policy.default; header values are decoded here, with fallbacks.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesParser
import re

from mail.htmlsafe import html_to_text
from mail.inbound.parsing.bodies import Body, ParsedAttachment, charset_param, note_parser_defects, walk
from mail.inbound.parsing.charsets import decode_bytes, storable, unescape_8bit
from mail.inbound.parsing.headers import (GENERATED_ID_DOMAIN, POLICY, Address, Headers, after_headers, as_utc,
                                          first_msg_id, generated_message_id, msg_ids, parse_date)

__all__ = ["Address", "ParsedAttachment", "ParsedEmail", "parse", "parse_headers", "GENERATED_ID_DOMAIN"]

SNIPPET_CHARS = 160
MAX_DEFECTS = 50
DEFECT_MAX_CHARS = 200

_NEWLINES_RE = re.compile(r"\r\n?")
_WORD_RE = re.compile(r"\S+")


@dataclass
class ParsedEmail:
    message_id: str
    subject: str
    from_: Address | None
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    date: datetime
    date_was_missing: bool
    in_reply_to: str | None
    references: list[str]
    text: str
    html: str | None
    attachments: list[ParsedAttachment]
    sha256: str
    size: int
    defects: list[str]

    def participants(self) -> set[str]:
        """Return the addresses of the sender and of every To and Cc recipient."""
        found = {a.addr for a in (*self.to, *self.cc)}
        if self.from_ is not None:
            found.add(self.from_.addr)
        return found

    @property
    def snippet(self) -> str:
        """The first SNIPPET_CHARS characters of what the sender wrote, whitespace collapsed: the
        quoted message they answer and their signature are left out (see _own_words)."""
        words: list[str] = []
        length = 0
        for match in _WORD_RE.finditer(_own_words(self.text)):
            words.append(match.group())
            length += len(words[-1]) + 1
            if length > SNIPPET_CHARS:
                break
        return " ".join(words)[:SNIPPET_CHARS]


# Where the quoted original starts ("On 3 May, Ann wrote:", Outlook's "-----Original Message-----",
# "From: ..." of a forwarded header block) and where a signature starts ("-- " by RFC 3676).
_QUOTE_START_RE = re.compile(r"^(on\b.{0,200}\bwrote:|am\b.{0,200}\bschrieb.{0,80}:|le\b.{0,200}\ba écrit\s?:"
                             r"|-{2,}\s*original message\s*-{2,}|_{10,})\s*$", re.IGNORECASE)
_SIGNATURE_RE = re.compile(r"^(-- ?|--|—)$")


def _own_words(text: str) -> str:
    """The text down to the first quoted line, quote attribution or signature delimiter."""
    kept = []
    for line in _NEWLINES_RE.sub("\n", text).split("\n"):
        stripped = line.strip()
        if stripped.startswith(">") or _QUOTE_START_RE.match(stripped) or _SIGNATURE_RE.match(line.rstrip()):
            if kept:
                break
            continue  # a message that starts with a quote: its own words may come after it
        kept.append(line)
    return "\n".join(kept) or text


def parse(raw: bytes, received_at: datetime) -> ParsedEmail:
    """Parse a whole message; never raises, whatever `raw` holds.

    A missing or unreadable Date becomes `received_at` (naive means UTC); a missing Message-ID
    a generated one (see GENERATED_ID_DOMAIN). Imperfections are listed in `defects`.
    """
    try:
        return _parse(bytes(raw), received_at, headers_only=False)
    except Exception as exc:  # a mail we cannot parse is still kept, as text
        return _unparseable(raw, received_at, exc)


def parse_headers(raw_headers: bytes, received_at: datetime) -> ParsedEmail:
    """Parse only the header section (POP3 TOP of a message too large to fetch); never raises.

    Body, html and attachments are empty; `size` and `sha256` describe `raw_headers`.
    """
    try:
        return _parse(bytes(raw_headers), received_at, headers_only=True)
    except Exception as exc:
        return _unparseable(raw_headers, received_at, exc, headers_only=True)


def _parse(raw: bytes, received_at: datetime, *, headers_only: bool) -> ParsedEmail:
    defects: list[str] = []
    msg = BytesParser(policy=POLICY).parsebytes(raw, headersonly=headers_only)
    if headers_only:
        body = Body()
        note_parser_defects(msg, defects)
    else:
        body = walk(msg, raw, defects)
    headers = Headers(msg, body.charset or charset_param(msg), defects)
    date = parse_date(headers.text("date"))
    if date is None:
        defects.append(f"{'no usable' if 'date' in headers else 'no'} Date header: "
                       "used the time received")
    message_id = first_msg_id(headers.text("message-id"))
    if message_id is None:
        message_id = generated_message_id(raw)
        defects.append(f"no Message-ID: generated {message_id}")
    senders = headers.addresses("From")
    text, html = _body_text(msg, body)
    return ParsedEmail(
        message_id=message_id,
        subject=headers.text("subject"),
        from_=senders[0] if senders else None,
        to=headers.addresses("To"),
        cc=headers.addresses("Cc"),
        reply_to=headers.addresses("Reply-To"),
        date=date or as_utc(received_at),
        date_was_missing=date is None,
        in_reply_to=first_msg_id(headers.text("in-reply-to")),
        references=msg_ids(headers.text("references")),
        text=text,
        html=html,
        attachments=body.attachments,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        defects=[d[:DEFECT_MAX_CHARS] for d in dict.fromkeys(defects)][:MAX_DEFECTS],
    )


def _body_text(msg: Message, body: Body) -> tuple[str, str | None]:
    """The text and html bodies; text rendered from the html when the mail has only that."""
    text = "\n\n".join(t for t in body.text if t.strip())
    html = "\n".join(h for h in body.html if h.strip()) or None
    if not text and html:
        text = html_to_text(html)
    elif not text and isinstance(msg.preamble, str):  # old bounces explain themselves there
        text = unescape_8bit(msg.preamble, body.charset).strip()
    return storable(_NEWLINES_RE.sub("\n", text)), storable(html) if html else None


def _unparseable(raw: object, received_at: datetime, exc: Exception, *,
                 headers_only: bool = False) -> ParsedEmail:
    """What can be had when the MIME parse failed: the headers, and the rest as plain text."""
    data = bytes(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else b""
    failure = storable(f"could not be parsed ({type(exc).__name__}: {exc})")[:DEFECT_MAX_CHARS]
    text = "" if headers_only else storable(decode_bytes(after_headers(data), None)[0])
    try:
        mail = _parse(data, received_at, headers_only=True)
        mail.text, mail.defects = text, [failure, *mail.defects]
        return mail
    except Exception:  # even the headers are beyond the parser: keep the bytes as text
        pass
    try:
        when = as_utc(received_at)
    except Exception:  # received_at itself is unusable: the epoch says "unknown" plainly
        when = datetime.fromtimestamp(0, timezone.utc)
    return ParsedEmail(
        message_id=generated_message_id(data), subject="", from_=None, to=[], cc=[],
        reply_to=[], date=when, date_was_missing=True, in_reply_to=None, references=[],
        text=text, html=None, attachments=[], sha256=hashlib.sha256(data).hexdigest(),
        size=len(data), defects=[failure],
    )
