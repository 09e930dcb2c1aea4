"""Download and parse messages for a poll: in bounded memory, and ahead of the storing.

poplib's RETR builds a list of every line (a 25 MB mail: 330,000 objects, 64 MB at its peak): a
message is read into one buffer instead, and a large one is parsed hollowed out
(mail.inbound.parsing.large).

The Downloader fetches the next batch in a thread while the poll stores the last one.
"""
from __future__ import annotations

import poplib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mail.inbound import pop3
from mail.inbound.parsing import ParsedEmail, parse_headers
from mail.inbound.parsing.large import LARGE_MESSAGE_BYTES, Base64Body, parse_message
from mail.inbound.pop3 import Pop3Session
from models import utcnow

if TYPE_CHECKING:  # mail.inbound.ledger imports mail.inbound.store, which imports this module
    from mail.inbound.ledger import PollItem

QUEUE_POLL_S = 0.05


class FetchSession(Pop3Session):
    """A Pop3Session that can download a message into one buffer."""

    def retr_buffer(self, number: int, size_hint: int = 0) -> bytearray:
        """Return message `number` exactly as stored, with CRLF line ends, in a buffer sized from
        the LIST size. Raises MailError."""
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
