"""Header fields: decoded text (RFC 2047 words, raw 8-bit bytes), addresses, dates and Message-IDs.

Every function here is linear in the size of its input: any sender can write a header, and a slow
one would stall every poll of the mailbox that receives it.
"""
from __future__ import annotations

import binascii
import hashlib
import inspect
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from mail.inbound.parsing.charsets import decode_bytes, has_8bit_escapes, storable, unescape_8bit
from models import normalise_address

# A message without a Message-ID gets "{sha256 hex of its header section}@generated.invalid"
# (stored without angle brackets, like every message_id here): the same for a full download
# and for a headers-only TOP of it, and .invalid can never be a real domain.
GENERATED_ID_DOMAIN = "generated.invalid"


def _raw_header(name: str, value: str) -> str:
    return value


# policy.default, except that a header reads back as its raw unfolded string: the header
# registry re-parses Content-Type on every access (parsing ran 5-7x slower on the corpus with
# it) and can raise on malformed values; headers are decoded below with fallbacks instead.
POLICY = policy.default.clone(header_factory=_raw_header)

# Releases since mid-2024 (3.13, 3.12.6, 3.11.10) default getaddresses() to strict=True, which
# turns a whole header with one bad address into [("", "")]: ask for the lenient parse.
_GETADDRESSES_KW = (
    {"strict": False} if "strict" in inspect.signature(getaddresses).parameters else {})

_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_NOT_BASE64_RE = re.compile(rb"[^A-Za-z0-9+/]")
# A run of white space holding a line break (what is left of folding): one space. The look-behind
# starts a match only where a run starts; without it a long run with no line break was tried
# again from each of its positions, quadratic in its length (minutes for 100 KB).
_LINE_BREAKS_RE = re.compile(r"(?<!\s)\s*[\r\n]\s*")
_MSG_ID_RE = re.compile(r"<([^<>]*)>")
_ADDR_SPEC_RE = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+")


@dataclass(frozen=True)
class Address:
    name: str
    addr: str


def collapse_line_breaks(text: str) -> str:
    """Each run of white space that holds a line break becomes one space."""
    return _LINE_BREAKS_RE.sub(" ", text)


class Headers:
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
        return header_text(values[0], name, self.defects, self.charset) if values else ""

    def addresses(self, name: str) -> list[Address]:
        """Every mailbox of every `name` field, in order, once each."""
        return _addresses(self.fields.get(name.lower(), []), name, self.defects, self.charset)


def header_text(value: str, name: str, defects: list[str], charset: str | None = None) -> str:
    if has_8bit_escapes(value):
        defects.append(f"raw 8-bit bytes in the {name.title()} header")
        value = unescape_8bit(value, charset)
    return storable(collapse_line_breaks(decode_encoded_words(value))).strip()


def decode_encoded_words(text: str) -> str:
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
                out.append(decode_bytes(bytes(pending), pending_charset)[0])
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
        out.append(decode_bytes(bytes(pending), pending_charset)[0])
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
        if has_8bit_escapes(value):
            defects.append(f"raw 8-bit bytes in the {header} header")
            value = unescape_8bit(value, charset)
        for name, addr in _address_pairs(value, header, defects):
            for addr in _addr_specs(storable(normalise_address(addr)), header, defects):
                if addr not in seen:
                    seen.add(addr)
                    display = storable(collapse_line_breaks(decode_encoded_words(name)))
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


def parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        date = parsedate_to_datetime(value)
        if date.tzinfo is None:  # "-0000" means "zone unknown": UTC is the best guess
            date = date.replace(tzinfo=timezone.utc)
        return date.astimezone(timezone.utc)
    except Exception:  # ValueError, TypeError, OverflowError seen on real and made-up dates
        return None


def as_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


def first_msg_id(value: str) -> str | None:
    ids = msg_ids(value)
    return ids[0] if ids else None


def msg_ids(value: str) -> list[str]:
    """Message-IDs in a header, without angle brackets; bare tokens when none are bracketed."""
    tokens = _MSG_ID_RE.findall(value) or value.split()
    ids = ("".join(token.split()) for token in tokens)
    return list(dict.fromkeys(i for i in ids if i))


def _header_end(raw: bytes) -> int:
    """Where the header section ends: at the first empty line, else at the end."""
    ends = [raw.find(separator) for separator in (b"\r\n\r\n", b"\n\n")]
    return min((end for end in ends if end != -1), default=len(raw))


def after_headers(raw: bytes) -> bytes:
    end = _header_end(raw)
    return raw[end:].lstrip(b"\r\n")


def generated_message_id(raw: bytes) -> str:
    section = raw[:_header_end(raw)].replace(b"\r\n", b"\n")
    # Without any header line the section says nothing: hash all there is.
    source = section if b":" in section else raw
    return f"{hashlib.sha256(source).hexdigest()}@{GENERATED_ID_DOMAIN}"
