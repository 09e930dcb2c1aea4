"""An account's health after each poll (a PollResult, or the error that ended it): state, last
error, counts, and when to poll next.

A success makes the account READY, clears its error and backoff and schedules the next poll one
poll_interval_s later. A failure backs off: the poll interval at first, then doubling, at most
BACKOFF_MAX_S. A refused password (AUTH_ERROR) is not scheduled at all: the account waits for a
new password (accounts.change_password makes it READY, and an unscheduled account is due at once)
or for its owner's Fetch now.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from mail.errors import MailError
from mail.inbound import accounts
from models import AccountState, MailAccount, db, utcnow

BACKOFF_MAX_S = 3600
# Not the account's failure: it stays due, for this worker or another, and keeps its health.
NOT_THE_ACCOUNTS = frozenset({"lease", "stopped", "gone"})

log = logging.getLogger(__name__)


class PollError(Exception):
    """A poll failure that is not the server's: the database, the lease, a bug. Worded for users."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class PollResult:
    """What one poll did, for the user (mail fetch, the account's state) and for the next poll."""

    account_id: int
    on_server: int = 0  # messages the server listed
    fetched: int = 0  # new emails stored
    linked: int = 0  # of those, linked to at least one Lead or Contact (too-large entries are too)
    skipped: int = 0  # too large, left on the server (new ones and earlier ones still there)
    recognised: int = 0  # downloaded, but already here (same Message-ID and bytes)
    deleted: int = 0  # deleted from the server (delete mode)
    forgotten: int = 0  # ledger rows dropped: their messages are gone from the server
    errors: list[str] = field(default_factory=list)  # sentences for the user
    error: MailError | PollError | None = None  # what ended the poll early, if anything

    @property
    def ok(self) -> bool:
        return not self.errors


def record_success(account_id: int, outcome: PollResult) -> bool:
    """Note a completed poll (READY, or ERROR if some messages could not be saved: those come
    again at the normal pace), committing it with whatever the poll left pending (the ledger rows
    it forgot). False if the database refused."""
    def note(account: MailAccount) -> None:
        now = utcnow()
        account.state = AccountState.READY if not outcome.errors else AccountState.ERROR
        account.last_error = " ".join(outcome.errors)
        account.last_checked_at = account.last_poll_at = now
        _counts(account, outcome)
        account.backoff_s = 0
        account.next_poll_at = now + timedelta(seconds=account.poll_interval_s)
        db.session.commit()

    return _saved(account_id, note)


def record_failed_poll(account_id: int, outcome: PollResult, error: MailError | PollError) -> bool:
    """Note a poll that failed with `error` (a sentence as str(error)): state, backoff, next poll.
    Rolls back what the poll left pending first. Commits; False if the database refused."""
    db.session.rollback()
    if error.kind in NOT_THE_ACCOUNTS:
        return True

    def note(account: MailAccount) -> None:
        now = utcnow()
        account.last_poll_at = now
        _counts(account, outcome)
        account.backoff_s = next_backoff(account.backoff_s, account.poll_interval_s)
        account.next_poll_at = None if error.kind == "auth" else now + timedelta(seconds=account.backoff_s)
        accounts.record_failure(account, error)  # state, last error; commits

    return _saved(account_id, note)


def next_backoff(backoff_s: int, interval_s: int) -> int:
    """The poll interval after a first failure, then twice the last wait, at most BACKOFF_MAX_S."""
    return min(BACKOFF_MAX_S, backoff_s * 2 if backoff_s else max(1, interval_s))


def _counts(account: MailAccount, outcome: PollResult) -> None:
    account.last_poll_fetched = outcome.fetched
    account.last_poll_linked = outcome.linked
    account.last_poll_skipped = outcome.skipped


def _saved(account_id: int, note) -> bool:
    try:
        account = db.session.get(MailAccount, account_id)
        if account is not None:
            note(account)
        return True
    except SQLAlchemyError as exc:  # the database away: the poll's own result still says it all
        db.session.rollback()
        log.error("mail account %s: health not saved: %s", account_id, type(exc).__name__)
        return False
