"""Download and parse messages for a poll: in bounded memory, and ahead of the storing.

poplib's RETR builds a list of every line (a 25 MB mail: 330,000 objects, 64 MB at its peak),
and the standard library's parser needs about eight times a message's size (193 MB for 25 MB of
base64). So a message is read into one buffer, and a large one is parsed hollowed out: each big
base64 body is replaced by a short marker, the rest goes through mail.inbound.parsing as usual, and the
bodies are decoded from the buffer a chunk at a time as they are written (mail.inbound.store). Whatever
the hollowed parse cannot vouch for (a marker that is not exactly one attachment, a body that is
not clean base64, a nested message) falls back to the ordinary parse: correct first, then small.

The Downloader fetches the next batch in a thread while the poll stores the last one.
"""
from __future__ import annotations

import binascii
import hashlib
import poplib
import queue
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

from mail.inbound import pop3
from mail.inbound.parsing import ParsedEmail, parse, parse_headers
from mail.inbound.pop3 import Pop3Session
from models import utcnow

if TYPE_CHECKING:  # mail.inbound.ledger imports mail.inbound.store, which imports this module
    from mail.inbound.ledger import PollItem

LARGE_MESSAGE_BYTES = 2 * 1024 * 1024  # parsed hollowed out above this size
HOLLOW_MIN_BYTES = 128 * 1024  # a base64 body this large is decoded straight from the buffer
DECODE_STEP_BYTES = 512 * 1024
QUEUE_POLL_S = 0.05

_BASE64_CTE_RE = re.compile(rb"^content-transfer-encoding:[ \t]*base64[ \t]*\r?$", re.I | re.M)
_NOT_BASE64_RE = re.compile(rb"[^A-Za-z0-9+/=\r\n]")
_BLANK_LINE_RE = re.compile(rb"\r?\n\r?\n")
_KEEP_TYPES = ("text/", "message/", "multipart/")  # these the parser must see whole


class FetchSession(Pop3Session):
    """A Pop3Session that can download a message into one buffer."""

    def retr_buffer(self, number: int, size_hint: int = 0) -> bytearray:
        """Return message `number` exactly as Pop3Session.retr does (CRLF line ends), in a
        buffer sized from the LIST size. Raises MailError."""
        self._call("_shortcmd", f"RETR {number}")
        client = self._client
        buffer = bytearray(size_hint)
        end = 0
        try:
            while True:
                line, _ = client._getline()  # type: ignore[union-attr]
                if line == b".":
                    break
                if line.startswith(b".."):  # dot-stuffing, undone as poplib does
                    line = line[1:]
                start, end = end, end + len(line) + 2
                buffer[start:end] = line + b"\r\n"  # in place while the LIST size holds
        except (poplib.error_proto, OSError, ValueError) as exc:
            self.close()  # a half-read message would be taken as the answer to the next command
            raise pop3._to_mail_error(exc, self.settings) from exc
        del buffer[end:]
        return buffer


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


@dataclass
class Downloaded:
    """One message as it came: its bytes (None if too large: headers only) and its only parse."""

    item: PollItem
    raw: bytes | bytearray | None
    parsed: ParsedEmail
    deferred: dict[int, Base64Body] = field(default_factory=dict)  # see Parsed


Batch = list[Downloaded]


class Downloader:
    """Downloads and parses the next batch in a thread while the caller stores the last one:
    the database's round trips then cost no time (psycopg and sqlite3 let go of the GIL while
    they wait). At most one finished batch waits, so memory stays at about two batches.

    Use as a context manager; leaving it stops the thread after the message it is on.
    """

    def __init__(self, session: FetchSession, items: list[PollItem], *, batch_size: int,
                 max_batch_bytes: int, on_message: Callable[[], None]) -> None:
        self._session = session
        self._items = items
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._on_message = on_message  # called in the download thread after each message
        self._queue: queue.Queue[tuple[Batch | None, BaseException | None]] = queue.Queue(maxsize=1)
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-download", daemon=True)

    def __enter__(self) -> Downloader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cancel.set()
        while self._thread.is_alive():  # unblock a put() and wait for the message in progress
            try:
                self._queue.get(timeout=QUEUE_POLL_S)
            except queue.Empty:
                pass
        self._thread.join()

    def batches(self) -> Iterator[tuple[Batch, BaseException | None]]:
        """Each batch as it is ready; with it, the exception that ended the downloading (then the
        batch holds what came before it, and it is the last)."""
        while True:
            batch, error = self._queue.get()
            if batch is None:
                return
            yield batch, error
            if error is not None:
                return

    def _run(self) -> None:
        batch: Batch = []
        held = 0
        try:
            for item in self._items:
                if self._cancel.is_set():
                    return
                if batch and held + item.size > self._max_batch_bytes:  # never two big ones at once
                    self._put(batch, None)
                    batch, held = [], 0
                batch.append(self._get(item))
                held += item.size
                self._on_message()
                if len(batch) >= self._batch_size or held >= self._max_batch_bytes:
                    self._put(batch, None)
                    batch, held = [], 0
        except BaseException as exc:  # the caller keeps the batch so far, then raises this
            self._put(batch, exc)
            return
        if batch:
            self._put(batch, None)
        self._put(None, None)

    def _put(self, batch: Batch | None, error: BaseException | None) -> None:
        while not self._cancel.is_set():
            try:
                self._queue.put((batch, error), timeout=QUEUE_POLL_S)
                return
            except queue.Full:
                pass

    def _get(self, item: PollItem) -> Downloaded:
        if item.too_large:
            headers = item.headers or parse_headers(self._session.top(item.number, 0), utcnow())
            return Downloaded(item, None, headers)
        raw = self._session.retr_buffer(item.number, item.size)
        if len(raw) <= LARGE_MESSAGE_BYTES:
            raw = bytes(raw)  # a small copy; a large buffer is stored as it is
        parsed = parse_message(raw, utcnow())
        return Downloaded(item, raw, parsed.email, parsed.deferred)
