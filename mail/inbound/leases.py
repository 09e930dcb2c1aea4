"""Who polls which account: leases in the database, so any number of workers (the web process's
poller thread, `flask mail worker` on any machine) share the accounts without ever polling one
account twice at once.

An account is due when its next_poll_at has passed (or it was never scheduled, or Fetch now
asked for it). A worker claims due accounts by setting lease_owner and lease_until in one
transaction: on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED` lets workers pass each other's
claims without waiting; everywhere, the claim itself is a compare-and-set UPDATE that only wins
while the lease is free or expired. A running poll keeps its lease short (LEASE_S) and alive with a
heartbeat from a thread of its own (every HEARTBEAT_S), and with every batch: a worker that dies
loses its accounts within one lease, and at once to a worker on the same host, which can see that
the process named in the lease owner (kind-host-pid-random) no longer exists.

An account whose password the server refused (AUTH_ERROR) is not polled until the password
changes (accounts.change_password makes it READY, and it is then due at once) or its owner asks
for Fetch now. Accounts of deactivated users are not polled, nor any while the add-on is off.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update

from mail.org import mail_addon_enabled
from models import AccountState, MailAccount, User, db, utcnow

LEASE_S = 60.0  # a lease's length; a running poll's heartbeat renews it long before it runs out
HEARTBEAT_S = 15.0  # how often a running poll renews its lease, from its own thread
CLAIM_LIMIT = 5  # accounts claimed at once: the rest stay free for other workers

log = logging.getLogger(__name__)


def new_worker_id(kind: str = "worker") -> str:
    """A name unique across machines and processes, shown as the lease owner (see LeaseOwner)."""
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LeaseOwner:
    """A lease owner's name read back: which kind of worker, on which host, in which process."""

    kind: str
    host: str
    pid: int

    @classmethod
    def parse(cls, owner: str) -> LeaseOwner | None:
        """From new_worker_id's 'kind-host-pid-random' (a host name may hold dashes); None otherwise."""
        kind, _, rest = owner.partition("-")
        if rest.count("-") < 2:
            return None
        host, pid, token = rest.rsplit("-", 2)
        if not (kind and host and pid.isdigit() and token):
            return None
        return cls(kind, host, int(pid))

    def is_gone(self) -> bool:
        """True only when this host can see that the owner's process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # someone else's process: alive
            return False
        return False


def lease_sentence(account: MailAccount) -> str:
    """'held by cli-host-123-ab12cd (a cli on host, process 123) until 2026-12-01 21:32:05 UTC';
    '' when no lease is held."""
    if not is_polling(account):
        return ""
    owner = LeaseOwner.parse(account.lease_owner)
    who = f" (a {owner.kind} on {owner.host}, process {owner.pid})" if owner else ""
    return f"held by {account.lease_owner}{who} until {account.lease_until:%Y-%m-%d %H:%M:%S} UTC"


def _lease_free(now, dead: list[str] = ()):
    free = or_(MailAccount.lease_until.is_(None), MailAccount.lease_until < now)
    return or_(free, MailAccount.lease_owner.in_(dead)) if dead else free


def _dead_owners(now) -> list[str]:
    """Owners of unexpired leases whose process, on this host, no longer exists."""
    held = db.session.scalars(select(MailAccount.lease_owner).distinct()
                              .where(MailAccount.lease_owner != "", MailAccount.lease_until >= now))
    return [owner for owner in held if (parsed := LeaseOwner.parse(owner)) is not None and parsed.is_gone()]


def claim_due_accounts(worker_id: str, limit: int = CLAIM_LIMIT, lease_s: float = LEASE_S) -> list[int]:
    """Lease up to `limit` due accounts to this worker and commit; returns their ids, most
    urgent first (Fetch now, then the longest overdue). Raises SQLAlchemyError."""
    if not mail_addon_enabled():
        db.session.commit()
        return []
    now = utcnow()
    dead = _dead_owners(now)
    due = and_(
        or_(MailAccount.next_poll_at.is_(None), MailAccount.next_poll_at <= now, MailAccount.poll_requested.is_(True)),
        _lease_free(now, dead),
        or_(MailAccount.state != AccountState.AUTH_ERROR, MailAccount.poll_requested.is_(True)),
        User.active.is_(True),
    )
    query = (select(MailAccount.id).join(User, User.id == MailAccount.user_id).where(due)
             .order_by(MailAccount.poll_requested.desc(), MailAccount.next_poll_at.asc().nulls_first(),
                       MailAccount.id).limit(limit))
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=MailAccount)
    candidates = list(db.session.scalars(query))
    claimed = [account_id for account_id in candidates if _take(account_id, worker_id, lease_s, now, dead)]
    db.session.commit()
    return claimed


def all_account_ids() -> list[int]:
    """Every mail account, oldest first (mail fetch --all)."""
    return list(db.session.scalars(select(MailAccount.id).order_by(MailAccount.id)))


def claim_account(account_id: int, worker_id: str, lease_s: float = LEASE_S) -> bool:
    """Lease this one account now, due or not (mail fetch --account); False if another worker
    holds it (lease_sentence says who, and until when). Commits. Raises SQLAlchemyError."""
    now = utcnow()
    taken = _take(account_id, worker_id, lease_s, now, _dead_owners(now))
    db.session.commit()
    return taken


def _take(account_id: int, worker_id: str, lease_s: float, now, dead: list[str]) -> bool:
    # Compare-and-set: of two workers racing for one account, exactly one matches the row.
    result = db.session.execute(
        update(MailAccount).where(MailAccount.id == account_id, _lease_free(now, dead))
        .values(lease_owner=worker_id, lease_until=now + timedelta(seconds=lease_s), poll_requested=False),
        execution_options={"synchronize_session": False})
    return result.rowcount == 1


def release(account_id: int, worker_id: str) -> None:
    """Give the lease back (only if this worker still holds it) and commit."""
    db.session.execute(
        update(MailAccount).where(MailAccount.id == account_id, MailAccount.lease_owner == worker_id)
        .values(lease_owner="", lease_until=None), execution_options={"synchronize_session": False})
    db.session.commit()


def is_polling(account: MailAccount) -> bool:
    """Whether a worker holds this account's lease now (a poll runs, or its worker died less than
    a lease ago: lease_sentence says whose and until when)."""
    return bool(account.lease_owner) and account.lease_until is not None and account.lease_until > utcnow()


def progress_sentence(account: MailAccount) -> str:
    """'Fetched 340 of 1,200; held by ... until ...' while a lease is held; '' otherwise."""
    if not is_polling(account):
        return ""
    done = f"Fetched {account.progress_done:,} of {account.progress_total:,}" if account.progress_total else "Starting"
    return f"{done}; {lease_sentence(account)}"


class Heartbeat:
    """Renews a lease every `every_s` from a thread of its own while a poll runs (the poll itself
    may sit for minutes in one large message). Writes through its own connection: the poll's
    session is not shared between threads."""

    def __init__(self, engine, account_id: int, worker_id: str, lease_s: float, every_s: float) -> None:
        self._engine, self._account_id, self._worker_id = engine, account_id, worker_id
        self._lease_s, self._every_s = lease_s, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mail-lease-{account_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        update(MailAccount).where(MailAccount.id == self._account_id,
                                                  MailAccount.lease_owner == self._worker_id)
                        .values(lease_until=utcnow() + timedelta(seconds=self._lease_s)))
            except Exception:  # the database away for a moment: the next beat tries again
                log.warning("mail account %s: lease not renewed", self._account_id, exc_info=True)
