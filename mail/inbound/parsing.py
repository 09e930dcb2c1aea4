"""Turn the raw bytes of one email into a ParsedEmail, whatever those bytes are.

`parse` never raises: a message we cannot read well is still stored (its raw bytes are kept
unchanged elsewhere), with `defects` saying what was imperfect. MIME structure comes from the
standard library parser with policy.default; header values are decoded here, with fallbacks.
"""
from __future__ import annotations

import binascii
import codecs
import hashlib
import inspect
import io
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from functools import lru_cache

from mail.htmlsafe import html_to_text
from models import normalise_address

SNIPPET_CHARS = 160
MAX_MIME_DEPTH = 50
MAX_DEFECTS = 50
DEFECT_MAX_CHARS = 200
FILENAME_MAX_CHARS = 180
HTML_CHARSET_SNIFF_BYTES = 2048
# A message without a Message-ID gets "{sha256 hex of its header section}@generated.invalid"
# (stored without angle brackets, like every message_id here): the same for a full download
# and for a headers-only TOP of it, and .invalid can never be a real domain.
GENERATED_ID_DOMAIN = "generated.invalid"


def _raw_header(name: str, value: str) -> str:
    return value


# policy.default, except that a header reads back as its raw unfolded string: the header
# registry re-parses Content-Type on every access (parsing ran 5-7x slower on the corpus with
# it) and can raise on malformed values; headers are decoded below with fallbacks instead.
_POLICY = policy.default.clone(header_factory=_raw_header)
# Re-serialising an enclosed message: compat32 writes the parsed header values back unchanged.
_COPY_POLICIES = {sep: policy.compat32.clone(max_line_length=0, linesep=sep)
                  for sep in ("\n", "\r\n")}

# Releases since mid-2024 (3.13, 3.12.6, 3.11.10) default getaddresses() to strict=True, which
# turns a whole header with one bad address into [("", "")]: ask for the lenient parse.
_GETADDRESSES_KW = (
    {"strict": False} if "strict" in inspect.signature(getaddresses).parameters else {})

_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_NOT_BASE64_RE = re.compile(rb"[^A-Za-z0-9+/]")
_SURROGATES_RE = re.compile(r"[\udc80-\udcff]")
# NUL is refused by PostgreSQL text columns; lone surrogates by every UTF-8 encoder.
_UNSTORABLE_RE = re.compile(r"[\x00\ud800-\udfff]")
_BOUNDARY_LINE_RE = re.compile(r"^--([ -~]{1,70}?)[ \t]*\r?$", re.MULTILINE)
_LINE_BREAKS_RE = re.compile(r"\s*[\r\n]+\s*")
_NEWLINES_RE = re.compile(r"\r\n?")
_MSG_ID_RE = re.compile(r"<([^<>]*)>")
_WORD_RE = re.compile(r"\S+")
_ADDR_SPEC_RE = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+")
_CONTENT_TYPE_RE = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,127}")
_CHARSET_NAME_RE = re.compile(r"[A-Za-z0-9._:+-]{1,40}")
_META_CHARSET_RE = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_FILENAME_JUNK_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")

# What senders label with the narrow name is, in practice, the wider Windows/WHATWG charset.
_CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "iso8859-1": "cp1252",
    "gb2312": "gb18030", "gbk": "gb18030", "euc-cn": "gb18030", "x-gbk": "gb18030",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "windows-31j": "cp932", "big5": "big5hkscs", "tis-620": "cp874", "windows-874": "cp874",
    "unicode-1-1-utf-7": "utf-7",
}
# Text codecs that turn escapes into characters: no mail body is written in these.
_REFUSED_CODECS = frozenset({"raw-unicode-escape", "unicode-escape", "idna", "punycode",
                             "undefined", "mbcs", "oem"})
_EXTENSIONS = {"message/rfc822": ".eml", "message/global": ".eml", "text/plain": ".txt",
               "message/delivery-status": ".txt", "text/rfc822-headers": ".txt",
               "application/octet-stream": ".bin", "image/jpeg": ".jpg", "text/calendar": ".ics"}


@dataclass(frozen=True)
class Address:
    name: str
    addr: str


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    content: bytes
    content_id: str | None
    inline: bool


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
        """The first SNIPPET_CHARS characters of the text, whitespace collapsed."""
        words: list[str] = []
        length = 0
        for match in _WORD_RE.finditer(self.text):
            words.append(match.group())
            length += len(words[-1]) + 1
            if length > SNIPPET_CHARS:
                break
        return " ".join(words)[:SNIPPET_CHARS]


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
    msg = BytesParser(policy=_POLICY).parsebytes(raw, headersonly=headers_only)
    if headers_only:
        body = _Body()
        _note_parser_defects(msg, defects)
    else:
        body = _walk(msg, raw, defects)
    headers = _Headers(msg, body.charset or _charset_param(msg), defects)
    date = _parse_date(headers.text("date"))
    if date is None:
        defects.append(f"{'no usable' if 'date' in headers else 'no'} Date header: "
                       "used the time received")
    message_id = _first_msg_id(headers.text("message-id"))
    if message_id is None:
        message_id = _generated_message_id(raw)
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
        date=date or _as_utc(received_at),
        date_was_missing=date is None,
        in_reply_to=_first_msg_id(headers.text("in-reply-to")),
        references=_msg_ids(headers.text("references")),
        text=text,
        html=html,
        attachments=body.attachments,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        defects=[d[:DEFECT_MAX_CHARS] for d in _dedupe(defects)[:MAX_DEFECTS]],
    )


def _body_text(msg: Message, body: _Body) -> tuple[str, str | None]:
    """The text and html bodies; text rendered from the html when the mail has only that."""
    text = "\n\n".join(t for t in body.text if t.strip())
    html = "\n".join(h for h in body.html if h.strip()) or None
    if not text and html:
        text = html_to_text(html)
    elif not text and isinstance(msg.preamble, str):  # old bounces explain themselves there
        text = _unescape_8bit(msg.preamble, body.charset).strip()
    return _storable(_NEWLINES_RE.sub("\n", text)), _storable(html) if html else None


def _unparseable(raw: object, received_at: datetime, exc: Exception, *,
                 headers_only: bool = False) -> ParsedEmail:
    """What can be had when the MIME parse failed: the headers, and the rest as plain text."""
    data = bytes(raw) if isinstance(raw, (bytes, bytearray, memoryview)) else b""
    failure = _storable(f"could not be parsed ({type(exc).__name__}: {exc})")[:DEFECT_MAX_CHARS]
    text = "" if headers_only else _storable(_decode_bytes(_after_headers(data), None)[0])
    try:
        mail = _parse(data, received_at, headers_only=True)
        mail.text, mail.defects = text, [failure, *mail.defects]
        return mail
    except Exception:  # even the headers are beyond the parser: keep the bytes as text
        pass
    try:
        when = _as_utc(received_at)
    except Exception:  # received_at itself is unusable: the epoch says "unknown" plainly
        when = datetime.fromtimestamp(0, timezone.utc)
    return ParsedEmail(
        message_id=_generated_message_id(data), subject="", from_=None, to=[], cc=[],
        reply_to=[], date=when, date_was_missing=True, in_reply_to=None, references=[],
        text=text, html=None, attachments=[], sha256=hashlib.sha256(data).hexdigest(),
        size=len(data), defects=[failure],
    )


# Headers --------------------------------------------------------------------------------------

class _Headers:
    """The top-level header fields of one message, decoded when asked for."""

    def __init__(self, msg: Message, charset: str | None, defects: list[str]) -> None:
        self.fields: dict[str, list[str]] = {}
        for name, value in msg.items():
            self.fields.setdefault(name.strip().lower(), []).append(value)
        self.charset = charset  # raw 8-bit header bytes are most often in the body's charset
        self.defects = defects

    def __contains__(self, name: str) -> bool:
        return name in self.fields

    def text(self, name: str) -> str:
        """The first `name` field, decoded; '' when there is none."""
        values = self.fields.get(name)
        return _header_text(values[0], name, self.defects, self.charset) if values else ""

    def addresses(self, name: str) -> list[Address]:
        """Every mailbox of every `name` field, in order, once each."""
        return _addresses(self.fields.get(name.lower(), []), name, self.defects, self.charset)


def _header_text(value: str, name: str, defects: list[str], charset: str | None = None) -> str:
    if _SURROGATES_RE.search(value):
        defects.append(f"raw 8-bit bytes in the {name.title()} header")
        value = _unescape_8bit(value, charset)
    return _storable(_LINE_BREAKS_RE.sub(" ", _decode_encoded_words(value))).strip()


def _decode_encoded_words(text: str) -> str:
    """Decode RFC 2047 words, joining adjacent words of one charset before decoding them."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    pos = 0
    for match in _ENCODED_WORD_RE.finditer(text):
        gap = text[pos:match.start()]
        data = _decode_word(match.group(2), match.group(3))
        charset = match.group(1).split("*", 1)[0].lower()
        gap_is_fold = pending_charset is not None and (not gap or gap.isspace())
        if data is None or not gap_is_fold or charset != pending_charset:
            if pending_charset is not None:
                out.append(_decode_bytes(bytes(pending), pending_charset)[0])
                pending.clear()
                pending_charset = None
            if not gap_is_fold or data is None:
                out.append(gap)
        if data is None:
            out.append(match.group(0))
        else:
            pending += data
            pending_charset = charset
        pos = match.end()
    if pending_charset is not None:
        out.append(_decode_bytes(bytes(pending), pending_charset)[0])
    out.append(text[pos:])
    return "".join(out)


def _decode_word(encoding: str, payload: str) -> bytes | None:
    try:
        data = payload.encode("utf-8")
        if encoding in "qQ":
            return binascii.a2b_qp(data, header=True)
        data = _NOT_BASE64_RE.sub(b"", data)
        if len(data) % 4 == 1:  # a stray character: no padding can fix that, dropping it can
            data = data[:-1]
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        return None


def _addresses(values: list[str], header: str, defects: list[str],
               charset: str | None) -> list[Address]:
    """Each mailbox of every `header` field; a bad one is noted and skipped, never fatal."""
    found: list[Address] = []
    seen: set[str] = set()
    for value in values:
        if _SURROGATES_RE.search(value):
            defects.append(f"raw 8-bit bytes in the {header} header")
            value = _unescape_8bit(value, charset)
        for name, addr in _address_pairs(value, header, defects):
            for addr in _addr_specs(_storable(normalise_address(addr)), header, defects):
                if addr not in seen:
                    seen.add(addr)
                    display = _storable(_LINE_BREAKS_RE.sub(" ", _decode_encoded_words(name)))
                    found.append(Address(name=" ".join(display.split()), addr=addr))
    return found


def _addr_specs(addr: str, header: str, defects: list[str]) -> list[str]:
    """`addr` if it looks like local@domain; else the words of it that do, noted as a defect."""
    if _ADDR_SPEC_RE.fullmatch(addr) or not addr:
        return [addr] if addr else []
    rescued = [word for word in addr.split() if _ADDR_SPEC_RE.fullmatch(word)]
    verb = f"read {', '.join(rescued)} from" if rescued else "ignored"
    defects.append(f"{verb} invalid {header} address {addr[:80]!r}")
    return rescued


def _address_pairs(value: str, header: str, defects: list[str]) -> list[tuple[str, str]]:
    try:
        return getaddresses([value], **_GETADDRESSES_KW)
    except Exception:  # RecursionError on a 135 KB header in the corpus
        defects.append(f"unreadable {header} header: read address by address")
    pairs: list[tuple[str, str]] = []
    for chunk in value.split(","):
        try:
            pairs.extend(getaddresses([chunk], **_GETADDRESSES_KW))
        except Exception:
            pairs.extend(("", addr) for addr in _ADDR_SPEC_RE.findall(chunk))
    return pairs


def _parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        date = parsedate_to_datetime(value)
        if date.tzinfo is None:  # "-0000" means "zone unknown": UTC is the best guess
            date = date.replace(tzinfo=timezone.utc)
        return date.astimezone(timezone.utc)
    except Exception:  # ValueError, TypeError, OverflowError seen on real and made-up dates
        return None


def _as_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def _first_msg_id(value: str) -> str | None:
    ids = _msg_ids(value)
    return ids[0] if ids else None


def _msg_ids(value: str) -> list[str]:
    """Message-IDs in a header, without angle brackets; bare tokens when none are bracketed."""
    tokens = _MSG_ID_RE.findall(value) or value.split()
    ids = ("".join(token.split()) for token in tokens)
    return _dedupe(i for i in ids if i)


def _header_end(raw: bytes) -> int:
    """Where the header section ends: at the first empty line, else at the end."""
    ends = [raw.find(separator) for separator in (b"\r\n\r\n", b"\n\n")]
    return min((end for end in ends if end != -1), default=len(raw))


def _after_headers(raw: bytes) -> bytes:
    end = _header_end(raw)
    return raw[end:].lstrip(b"\r\n")


def _generated_message_id(raw: bytes) -> str:
    section = raw[:_header_end(raw)].replace(b"\r\n", b"\n")
    # Without any header line the section says nothing: hash all there is.
    source = section if b":" in section else raw
    return f"{hashlib.sha256(source).hexdigest()}@{GENERATED_ID_DOMAIN}"


# Body -----------------------------------------------------------------------------------------

@dataclass
class _Body:
    charset: str | None = None  # of the first text part: a hint for raw 8-bit headers
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)


def _walk(msg: Message, raw: bytes, defects: list[str]) -> _Body:
    """Sort every MIME part into body text, body html or attachment, depth first, in order."""
    body = _Body()
    linesep = "\r\n" if b"\r\n" in raw[:4096] else "\n"
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        ctype = _content_type(part)
        payload = part.get_payload()
        if ctype.startswith("multipart/") and not isinstance(payload, list):
            payload = _recovered_parts(part, ctype, defects)
        if isinstance(payload, list) and ctype.startswith("multipart/"):
            if depth >= MAX_MIME_DEPTH:
                defects.append(f"MIME parts nested deeper than {MAX_MIME_DEPTH} were skipped")
                continue
            stack.extend((sub, depth + 1) for sub in reversed(payload))
        elif isinstance(payload, list):
            index = len(body.attachments)
            body.attachments.append(_message_attachment(part, ctype, linesep, index))
        else:
            _leaf(part, ctype, body, defects)
        _note_parser_defects(part, defects)  # after _leaf: decoding the payload adds some
    return body


def _recovered_parts(part: Message, ctype: str, defects: list[str]) -> str | list[Message]:
    """The parts of a multipart whose declared boundary is unused, split at the one that is.

    Spam declares one boundary and uses another: a first line "--X" followed by MIME headers
    or closed by "--X--" later is taken as the boundary, and that part alone is parsed again.
    Returns the payload unchanged when there is no such line (the part is then shown as text).
    """
    payload = part.get_payload()
    match = _BOUNDARY_LINE_RE.search(payload)
    if match is None or match.group(1) == part.get_boundary():
        return payload
    boundary = match.group(1)
    headers_follow = payload[match.end():match.end() + 10].lstrip().lower()
    if headers_follow.startswith("content-") or f"\n--{boundary}--" in payload:
        head = f'Content-Type: {ctype}; boundary="{boundary}"\n\n'
        raw = head.encode() + payload.encode("utf-8", "surrogateescape")
        rebuilt = BytesParser(policy=_POLICY).parsebytes(raw).get_payload()
        if isinstance(rebuilt, list):
            defects.append(f"{ctype} used an undeclared boundary: split at it")
            return rebuilt
    return payload


def _leaf(part: Message, ctype: str, body: _Body, defects: list[str]) -> None:
    try:
        data = part.get_payload(decode=True) or b""
    except Exception:  # decoding is lenient, but a payload is attacker-controlled
        defects.append(f"{ctype} part could not be decoded: kept as is")
        data = str(part.get_payload()).encode("utf-8", "surrogateescape")
    disposition = part.get_content_disposition()
    filename = _filename(part, body.charset)
    if ctype.startswith("multipart/"):
        defects.append(f"{ctype} part without usable boundary: shown as text")
        ctype = "text/plain"
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        charset = _charset_param(part)
        if charset is None and ctype == "text/html":
            sniffed = _META_CHARSET_RE.search(data[:HTML_CHARSET_SNIFF_BYTES])
            charset = sniffed.group(1).decode("ascii") if sniffed else None
        text, problem = _decode_bytes(data, charset)
        body.charset = body.charset or charset
        if problem:
            defects.append(f"{ctype} part: {problem}")
        (body.text if ctype == "text/plain" else body.html).append(text)
        return
    content_id = _content_id(part)
    body.attachments.append(ParsedAttachment(
        filename=filename or _fallback_filename(ctype, len(body.attachments)),
        content_type=ctype, size=len(data), content=data, content_id=content_id,
        inline=disposition == "inline" or (disposition is None and content_id is not None),
    ))


def _message_attachment(part: Message, ctype: str, linesep: str, index: int) -> ParsedAttachment:
    """An enclosed message (message/rfc822, a DSN's status...) re-serialised as bytes."""
    enclosed = part.get_payload()
    is_message = ctype in ("message/rfc822", "message/global") and len(enclosed) == 1
    inner = enclosed[0] if is_message else part
    try:
        buffer = io.BytesIO()
        BytesGenerator(buffer, mangle_from_=False, policy=_COPY_POLICIES[linesep]).flatten(inner)
        content = buffer.getvalue()
    except Exception:  # the generator trips on some broken structures; the mail matters more
        content = b""
    if inner is part:  # drop the part's own header section, keep its body
        content = content.partition((linesep * 2).encode())[2]
    filename = _filename(part)
    if not filename and is_message:
        subject = _header_text(inner.get("subject", ""), "Subject", [])
        filename = _safe_filename(subject + ".eml") if subject else None
    return ParsedAttachment(
        filename=filename or _fallback_filename(ctype, index), content_type=ctype,
        size=len(content), content=content, content_id=_content_id(part),
        inline=part.get_content_disposition() == "inline",
    )


def _content_type(part: Message) -> str:
    ctype = part.get_content_type()
    return ctype if _CONTENT_TYPE_RE.fullmatch(ctype) else "application/octet-stream"


def _charset_param(part: Message) -> str | None:
    try:
        value = part.get_param("charset")
        charset = collapse_rfc2231_value(value).strip().strip("'\"") if value else ""
        return charset or None
    except Exception:  # a malformed RFC 2231 continuation: as if no charset were given
        return None


def _content_id(part: Message) -> str | None:
    value = part.get("content-id")
    if not value:
        return None
    return _storable("".join(_unescape_8bit(value).split()).strip("<>")) or None


def _filename(part: Message, charset: str | None = None) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # a malformed RFC 2231 parameter: treat as unnamed
        return None
    if not name:
        return None
    return _safe_filename(_decode_encoded_words(_unescape_8bit(name, charset)))


def _safe_filename(name: str) -> str | None:
    """The last path segment of `name`, without control characters; None when nothing is left."""
    name = _storable(_FILENAME_JUNK_RE.sub(" ", name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(name.split()).strip(". ")
    if len(name) > FILENAME_MAX_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        name = name[:FILENAME_MAX_CHARS - len(keep) - 1].rstrip() + ("." + keep if keep else "")
    return name or None


def _fallback_filename(ctype: str, index: int) -> str:
    return f"attachment-{index + 1}{_extension(ctype)}"


@lru_cache(maxsize=256)
def _extension(ctype: str) -> str:
    return _EXTENSIONS.get(ctype) or mimetypes.guess_extension(ctype) or ".bin"


# Charsets -------------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _codec(charset: str) -> str | None:
    """The Python codec for a MIME charset name, or None when unknown or refused."""
    name = charset.strip().strip("'\"").lower().removeprefix("charset=")
    if not _CHARSET_NAME_RE.fullmatch(name):
        return None
    name = _CHARSET_SUPERSETS.get(name, name)
    for candidate in (name, name.removeprefix("x-"), name.replace("_", "-")):
        try:
            info = codecs.lookup(candidate)
        except LookupError:
            continue
        if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
            return None
        return info.name
    return None


@lru_cache(maxsize=256)
def _is_single_byte(codec: str) -> bool:
    """True for 8-bit tables (latin-1, koi8-r, mac-cyrillic...) that map (nearly) every byte."""
    try:
        table = bytes(range(128, 256)).decode(codec, "replace")
    except Exception:  # a stateful or odd codec: not a plain 8-bit table
        return False
    return len(table) == 128 and table.count("\ufffd") <= 16


def _decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode with the declared charset, else UTF-8, else cp1252 with replacements.

    Returns the text and, when the declared charset was not usable, a note saying why.
    """
    codec = _codec(charset) if charset else None
    problem = None
    if codec and _is_single_byte(codec) and not data.isascii():
        # Legacy text is practically never valid UTF-8, while UTF-8 under a legacy label is
        # common (the corpus has it as x-mac-cyrillic): a single-byte codec would "succeed".
        try:
            return data.decode("utf-8"), f"labelled {charset[:40]} but is utf-8"
        except UnicodeDecodeError:
            pass
    if codec:
        try:
            return data.decode(codec), None
        except Exception:  # UnicodeDecodeError, and odd codecs raise others
            problem = f"not valid {charset}"
    elif charset:
        problem = f"unknown charset {charset[:40]!r}"
    try:
        text = data.decode("utf-8")
        return text, problem and f"{problem}: decoded as utf-8"
    except UnicodeDecodeError:
        pass
    if codec and codec not in ("ascii", "utf-8"):
        try:
            return data.decode(codec, "replace"), f"{problem}: undecodable bytes replaced"
        except Exception:  # a stateful codec can fail even with errors="replace"
            pass
    return data.decode("cp1252", "replace"), problem and f"{problem}: decoded as cp1252"


# Helpers --------------------------------------------------------------------------------------

def _unescape_8bit(text: str, charset: str | None = None) -> str:
    """Decode the raw 8-bit bytes the parser kept as surrogate escapes (see _decode_bytes)."""
    if not _SURROGATES_RE.search(text):
        return text
    return _decode_bytes(text.encode("utf-8", "surrogateescape"), charset)[0]


def _storable(text: str) -> str:
    return _UNSTORABLE_RE.sub("", text)


def _dedupe(items) -> list[str]:
    return list(dict.fromkeys(items))


def _note_parser_defects(part: Message, defects: list[str]) -> None:
    for defect in part.defects:
        defects.append(_CAMEL_RE.sub(" ", type(defect).__name__.removesuffix("Defect")).lower())
