"""Parse a large message in bounded memory: hollowed out.

The standard library's parser needs about eight times a message's size (193 MB for 25 MB of
base64). So a large message is parsed hollowed out: each big base64 body is replaced by a short
marker, the rest goes through mail.inbound.parsing as usual, and the bodies are decoded from the
buffer a chunk at a time as they are written (mail.inbound.store). Whatever the hollowed parse
cannot vouch for (a marker that is not exactly one attachment, a body that is not clean base64, a
nested message) falls back to the ordinary parse: correct first, then small.
"""
from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from mail.inbound.parsing import ParsedEmail, parse

LARGE_MESSAGE_BYTES = 2 * 1024 * 1024  # parsed hollowed out above this size
HOLLOW_MIN_BYTES = 128 * 1024  # a base64 body this large is decoded straight from the buffer
DECODE_STEP_BYTES = 512 * 1024

_BASE64_CTE_RE = re.compile(rb"^content-transfer-encoding:[ \t]*base64[ \t]*\r?$", re.I | re.M)
_NOT_BASE64_RE = re.compile(rb"[^A-Za-z0-9+/=\r\n]")
_BLANK_LINE_RE = re.compile(rb"\r?\n\r?\n")
_KEEP_TYPES = ("text/", "message/", "multipart/")  # these the parser must see whole


@dataclass
class Base64Body:
    """An attachment's content left in the downloaded buffer as base64: decoded a chunk at a time
    while it is written to the database, never whole in memory."""

    source: bytes | bytearray
    start: int
    end: int
    size: int  # decoded octets

    def chunks(self, chunk_bytes: int) -> Iterator[bytes]:
        """The decoded content in pieces of about chunk_bytes. Raises binascii.Error."""
        pieces: list[bytes] = []
        held = 0
        for piece in self._decoded():
            pieces.append(piece)
            held += len(piece)
            if held >= chunk_bytes:
                yield b"".join(pieces)
                pieces, held = [], 0
        if pieces:
            yield b"".join(pieces)

    def _decoded(self) -> Iterator[bytes]:
        step = DECODE_STEP_BYTES // 3 * 4  # base64 characters (and line ends) a step reads
        pending = b""
        with memoryview(self.source) as view:
            for position in range(self.start, self.end, step):
                text = pending + bytes(view[position:min(self.end, position + step)]).translate(None, b"\r\n")
                whole = len(text) - len(text) % 4
                pending = text[whole:]
                if whole:
                    yield binascii.a2b_base64(text[:whole])
        if pending:
            raise binascii.Error("truncated base64 body")


@dataclass
class Parsed:
    email: ParsedEmail
    # Attachments (by index) whose content is still base64 in the buffer; their .content is b"".
    deferred: dict[int, Base64Body] = field(default_factory=dict)


def parse_message(raw: bytes | bytearray, received_at: datetime) -> Parsed:
    """mail.inbound.parsing.parse, in bounded memory for a large message; never raises."""
    if len(raw) <= LARGE_MESSAGE_BYTES:
        return Parsed(parse(bytes(raw), received_at))
    try:
        hollowed = _parse_hollowed(raw, received_at)
    except Exception:  # the fallback below is the reference behaviour
        hollowed = None
    return hollowed or Parsed(parse(bytes(raw), received_at))


def _parse_hollowed(raw: bytes | bytearray, received_at: datetime) -> Parsed | None:
    spans = _big_base64_bodies(raw)
    if not spans:
        return None
    token = secrets.token_hex(8)
    markers = [f"crm-hollow-{token}-{n}".encode() for n in range(len(spans))]
    skeleton = bytearray()
    position = 0
    for (start, end), marker in zip(spans, markers):
        skeleton += raw[position:start]
        skeleton += binascii.b2a_base64(marker)
        position = end
    skeleton += raw[position:]
    parsed = parse(bytes(skeleton), received_at)
    del skeleton
    placed = {}
    for index, part in enumerate(parsed.attachments):
        if part.content in markers:
            placed[markers.index(part.content)] = index
        elif token.encode() in part.content:  # a marker inside an enclosed message
            return None
    if len(placed) != len(spans) or token in parsed.text or token in (parsed.html or ""):
        return None
    deferred = {}
    for n, (start, end) in enumerate(spans):
        body = Base64Body(raw, start, end, _decoded_size(raw, start, end))
        part = parsed.attachments[placed[n]]
        part.content, part.size = b"", body.size
        deferred[placed[n]] = body
    parsed.sha256 = hashlib.sha256(raw).hexdigest()
    parsed.size = len(raw)
    return Parsed(parsed, deferred)


def _decoded_size(raw: bytes | bytearray, start: int, end: int) -> int:
    """Octets a clean base64 body decodes to. Raises binascii.Error if it is not whole."""
    characters = end - start - raw.count(b"\r", start, end) - raw.count(b"\n", start, end)
    if characters % 4:
        raise binascii.Error("base64 body of a length that is not a multiple of 4")
    tail = bytes(raw[max(start, end - 8):end]).translate(None, b"\r\n")
    return characters // 4 * 3 - (len(tail) - len(tail.rstrip(b"=")))


def _big_base64_bodies(raw: bytes | bytearray) -> list[tuple[int, int]]:
    """(start, end) of each large base64 body of a non-text part that is clean base64."""
    spans: list[tuple[int, int]] = []
    last_end = 0
    for match in _BASE64_CTE_RE.finditer(raw):
        if match.start() < last_end:
            continue
        blank = _BLANK_LINE_RE.search(raw, match.end())
        if blank is None:
            break
        head_start = _header_block_start(raw, match.start())
        ctype = BytesHeaderParser(policy=compat32).parsebytes(bytes(raw[head_start:blank.start()]) + b"\r\n")
        start = blank.end()
        boundary = raw.find(b"\n--", start)
        end = len(raw) if boundary == -1 else boundary + 1
        last_end = end
        if end - start < HOLLOW_MIN_BYTES or ctype.get_content_type().startswith(_KEEP_TYPES):
            continue
        if _NOT_BASE64_RE.search(raw, start, end) is not None or not _padding_at_end(raw, start, end):
            continue
        spans.append((start, end))
    return spans


def _header_block_start(raw: bytes | bytearray, position: int) -> int:
    """Where the header block holding `position` starts: after the last blank or boundary line."""
    blank = max(raw.rfind(b"\n\n", 0, position) + 2, raw.rfind(b"\n\r\n", 0, position) + 3, 0)
    boundary = raw.rfind(b"\n--", 0, position)
    after_boundary = raw.find(b"\n", boundary + 1, position) + 1 if boundary != -1 else 0
    return max(blank, after_boundary)


def _padding_at_end(raw: bytes | bytearray, start: int, end: int) -> bool:
    # "=" anywhere but at the very end (base64 blocks glued together) is decoded differently by
    # the standard library: leave such a body to it.
    first = raw.find(b"=", start, end)
    return first == -1 or not bytes(raw[first:end]).translate(None, b"\r\n").strip(b"=")
