"""Poll a POP3 account into the CRM without ever losing or doubling a message.

A poll: STAT, UIDL and LIST; compare with the fetch ledger (models.FetchedMessage); download only
what the ledger does not know (in delete mode, everything listed), oldest first, in batches (at
most BATCH_SIZE messages or about BATCH_MAX_BYTES); store each batch and its ledger rows (mail.inbound.batches)
in one transaction and commit it before anything is done on the server. Only then, in delete mode,
DELE every message whose bytes this poll committed or recognised (ones a crashed poll committed are
downloaded again and recognised) and QUIT, which is when the server really deletes; the ledger rows then say DELETED. A crash or a dropped connection anywhere
costs a download again, which the ledger recognises: never a lost or doubled message.

Recognising a message (by UIDL, Message-ID, size and SHA-256): mail.inbound.ledger.
Leave-on-server: a ledger row whose message is gone from the server is forgotten (its email stays).
DELETED rows are kept DELETED_KEEP_DAYS after the message was first seen, as a record of what this
CRM deleted; then forgotten too.

A message over the size limit (LIST size) is not downloaded: its headers (TOP n 0) become a
headers-only email, the ledger says SKIPPED "too large: left on the server", and it is never
deleted on the server. If the limit is raised later, it is downloaded then and replaces the entry.

Gmail `recent:username`: Gmail then lists every message of the last 30 days in every session,
whether another POP client took it or not, under stable UIDLs. The UIDL ledger fetches each one
once; messages older than 30 days drop out of the listing and are forgotten (their emails stay).
Gmail also lists the mail its user sent from other clients: it is fetched as received mail.

A message that cannot be stored (a bug, a value the database refuses) is skipped for this poll:
it gets no ledger row, so it is never deleted on the server and is tried again next poll; the
account shows the error. A commit the database refuses ends the poll with nothing deleted.

Downloading runs a batch ahead of storing (mail.inbound.fetch.Downloader), in bounded memory (mail.inbound.fetch);
storing is a few INSERTs per batch (mail.inbound.store); the account's health is mail.inbound.health's.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from mail.inbound import accounts, batches, fetch, health, ledger, matching
from mail.context import MailContext
from mail.errors import MailError
from mail.inbound.health import PollError, PollResult
from mail.inbound.ledger import PollItem
from mail.inbound.fetch import FetchSession
from mail.secrets import SecretError
from models import AddonSettings, MailAccount, db, utcnow

BATCH_SIZE = 50  # at most this many messages between commits
BATCH_MAX_BYTES = 8 * 1024 * 1024  # a batch of big messages is committed early: memory stays bounded
MAX_MESSAGE_BYTES = 25 * 1024 * 1024
DATABASE_REFUSED = ("The database refused to save the fetched mail; it stays on the server and "
                    "will be fetched at the next poll.")
LEASE_LOST = "Another worker took over this account; this poll stopped without deleting anything."
STOPPED = "The worker was stopped; the next poll carries on where this one ended."
ACCOUNT_GONE = "The account was deleted while it was being polled."
UNEXPECTED = "The poll stopped on an unexpected error ({name}); it will be retried."

Progress = Callable[[int, int], None]  # (downloaded, to download), called in the download thread
log = logging.getLogger(__name__)


def poll_account(ctx: MailContext, account_id: int, *, progress: Progress | None = None,
                 max_message_bytes: int = MAX_MESSAGE_BYTES, batch_size: int = BATCH_SIZE,
                 lease_owner: str | None = None, lease_s: float | None = None,
                 stop: threading.Event | None = None) -> PollResult:
    """Poll one account once and record its health; commits as it goes.

    With lease_owner, the poll stops if another worker holds the lease now, and with lease_s each
    batch renews it (mail.inbound.leases owns leases and their lengths). `stop` set ends the poll after the current batch, deleting nothing (the
    next poll carries on). Server and database failures end up in the result and on the
    account (mail.inbound.health), never raised. Raises LookupError if the account does not exist, and
    SQLAlchemyError if the database cannot be reached to read it.
    """
    account = db.session.get(MailAccount, account_id)
    if account is None:
        raise LookupError(f"There is no mail account {account_id}.")
    result = PollResult(account_id)
    try:
        settings = accounts.connection_settings(ctx, account)  # an OAuth token is refreshed here, in the lease
    except SecretError as exc:
        return _failed(account_id, result, MailError("auth", str(exc)))
    except MailError as exc:  # the provider refused the sign-in (Sign in again) or was unreachable (backoff)
        return _failed(account_id, result, exc)
    try:
        poll = _Poll(account, result, progress=progress, limit=max_message_bytes,
                     batch_size=min(max(1, batch_size), BATCH_SIZE), lease_owner=lease_owner, lease_s=lease_s,
                     stop=stop)
        policy = ctx.policy()
        _end_transaction()
        session = FetchSession.open(settings, policy)
        try:
            poll.run(session)
        finally:
            session.close()  # after quit() a no-op; otherwise no QUIT: nothing is deleted
    except (MailError, PollError) as exc:
        return _failed(account_id, result, exc)
    except Exception as exc:  # a bug must not stop fetching silently: it is shown and retried
        log.exception("poll of mail account %s failed", account_id)
        return _failed(account_id, result, PollError("internal", UNEXPECTED.format(name=type(exc).__name__)))
    return _succeeded(account_id, result)


class _Poll:
    def __init__(self, account: MailAccount, result: PollResult, *, progress: Progress | None, limit: int,
                 batch_size: int, lease_owner: str | None, lease_s: float | None,
                 stop: threading.Event | None) -> None:
        self.account_id = account.id
        self.owner_id = account.user_id
        self.delete_mode = not account.leave_on_server
        self.result = result
        self.progress = progress
        self.limit = limit
        self.batch_size = batch_size
        self.lease_owner = lease_owner
        self.lease_s = lease_s
        self.stop = stop
        self.storer = batches.Storer(account.id, account.user_id, matching.crm_mailbox_id(account.user_id),
                                     _settings_snapshot(account.user_id), result.errors)
        self.done = 0  # downloaded (the progress callback's count)
        self.committed = 0  # stored and committed: what the account's progress shows
        self.total = 0
        self.here: list[tuple[int, int]] = []  # (message number, ledger row id) committed here

    def run(self, session: FetchSession) -> None:
        """The whole poll on an open session. Raises MailError or PollError."""
        count, _ = session.stat()
        self.result.on_server = count
        try:
            uidls: dict[int, str] | None = session.uidl()
        except MailError as exc:
            if exc.kind != "no_uidl":
                raise
            uidls = None
        # LIST after UIDL: Mailutils writes an X-UIDL header into each message at the first UIDL.
        sizes = session.sizes() if count else {}
        rows = ledger.load_ledger(self.account_id)
        _end_transaction()
        if uidls is not None:
            plan = ledger.plan_by_uidl(rows, uidls, sizes, self.limit, self.delete_mode)
        else:
            plan = ledger.plan_without_uidl(rows, sizes, self.limit, self.delete_mode,
                                            lambda number: session.top(number, 0))
        self.result.skipped += plan.skipped
        self.storer.spare = plan.spare
        self._start(len(plan.items), uidl_supported=uidls is not None)
        self._download(session, plan.items)
        if self.delete_mode:
            self._delete(session)
        else:
            session.quit()
        ledger.forget(plan.forget)  # committed with the account's health
        self.result.forgotten = len(plan.forget)

    def _start(self, total: int, *, uidl_supported: bool) -> None:
        self.total = total
        db.session.execute(update(MailAccount).where(MailAccount.id == self.account_id).values(
            uidl_supported=uidl_supported, poll_requested=False), execution_options={"synchronize_session": False})
        self._touch(0)
        self._commit()

    def _download(self, session: FetchSession, items: list[PollItem]) -> None:
        """Download, store and commit the items batch by batch. Raises MailError or PollError."""
        with fetch.Downloader(session, items, batch_size=self.batch_size, max_batch_bytes=BATCH_MAX_BYTES,
                              on_message=self._downloaded_one) as downloader:
            for batch, error in downloader.batches():
                if error is None:
                    self._save(batch)
                elif batch:  # what was downloaded before the server failed is kept
                    try:
                        self._save(batch)
                    except PollError as exc:
                        self.result.errors.append(str(exc))
                if error is not None:
                    raise error
                if self.stop is not None and self.stop.is_set():
                    raise PollError("stopped", STOPPED)

    def _downloaded_one(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _save(self, batch: list[fetch.Downloaded]) -> None:
        """Store a batch and commit it; a message that fails alone is left for the next poll.

        Raises PollError if the database refuses the commit or the lease is lost.
        """
        try:
            done = self._store_batch(batch, isolate=False)
        except PollError:
            db.session.rollback()
            raise
        except Exception:
            # Some message cannot be stored: store the batch again, each message in a savepoint.
            log.warning("mail account %s: a batch failed to store; retrying message by message",
                        self.account_id, exc_info=True)
            db.session.rollback()
            try:
                done = self._store_batch(batch, isolate=True)
            except PollError:
                db.session.rollback()
                raise
            except Exception as exc:
                db.session.rollback()
                raise PollError("database", DATABASE_REFUSED) from exc
        self._commit()
        self.committed += len(batch)
        # Counted only now: a batch that was not committed fetched nothing.
        for d in done:
            if d.item.too_large:
                self.result.skipped += 1
            else:
                self.here.append((d.item.number, d.row_id))
                if d.new_email:
                    self.result.fetched += 1
                    self.result.linked += d.linked
                else:
                    self.result.recognised += 1

    def _store_batch(self, batch: list[fetch.Downloaded], *, isolate: bool) -> list[batches.Done]:
        # The progress update comes first: on SQLite a savepoint opened before any write would
        # begin (and its release commit) a transaction of its own.
        self._touch(self.committed + len(batch))  # committed with the batch: "Fetched 340 of 1,200"
        return self.storer.store(batch, isolate=isolate)

    def _touch(self, progress_done: int) -> None:
        """Write the progress (and renew the lease). Raises PollError if the lease is lost."""
        values: dict = {"progress_done": progress_done, "progress_total": self.total}
        stmt = update(MailAccount).where(MailAccount.id == self.account_id)
        if self.lease_owner is not None:
            stmt = stmt.where(MailAccount.lease_owner == self.lease_owner)
            if self.lease_s is not None:
                values["lease_until"] = utcnow() + timedelta(seconds=self.lease_s)
        matched = db.session.execute(stmt.values(**values), execution_options={"synchronize_session": False})
        if matched.rowcount == 0:
            if db.session.get(MailAccount, self.account_id) is None:
                raise PollError("gone", ACCOUNT_GONE)
            raise PollError("lease", LEASE_LOST)

    def _commit(self) -> None:
        try:
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            log.error("mail account %s: commit refused: %s", self.account_id, batches.describe(exc))
            raise PollError("database", DATABASE_REFUSED) from exc

    def _delete(self, session: FetchSession) -> None:
        """DELE every message committed here, QUIT, then mark the ledger. Raises MailError."""
        # DELE only after the commit: a crash costs a download again, never a mail.
        for number, _ in self.here:
            session.dele(number)
        session.quit()  # the server deletes now, and only now
        ledger.mark_deleted([row_id for _, row_id in self.here])
        self._commit()
        self.result.deleted = len(self.here)


def _succeeded(account_id: int, result: PollResult) -> PollResult:
    if not health.record_success(account_id, result):
        result.errors.append(DATABASE_REFUSED)
    return result


def _failed(account_id: int, result: PollResult, error: MailError | PollError) -> PollResult:
    """Record a failed poll on the account: the sentence, the error state, the backoff."""
    db.session.rollback()
    result.error = error
    result.errors.append(str(error))
    health.record_failed_poll(account_id, result, error)
    return result


def _settings_snapshot(user_id: int) -> AddonSettings | None:
    """The owner's consolidation settings, detached: a commit does not reload them per batch."""
    saved = db.session.get(AddonSettings, user_id)
    if saved is None:
        return None
    return AddonSettings(consolidate=saved.consolidate, consolidate_as=saved.consolidate_as,
                         consolidate_name=saved.consolidate_name)


def _end_transaction() -> None:
    # Never hold a transaction across network I/O: SQLite transactions take the write lock when
    # they begin (models.py), so the web pages would wait for the mail server.
    db.session.commit()
