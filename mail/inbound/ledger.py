"""The fetch ledger: what is on the server that is not here yet, what to recognise, what to forget
(planned over rows read once per poll), and the ledger's reads and writes. Nothing here commits.

A ledger row (models.FetchedMessage) per message this CRM knows on an account's server: its UIDL
(None on a server without UIDL), LIST size, Message-ID, SHA-256 of its bytes, its state.

Recognising a message:
- by UIDL, the normal case, when the server lists it once, one row has it and the size matches
  (a sender can choose a message's UIDL on some servers, by writing an X-UIDL header);
- by Message-ID and size before downloading, then Message-ID and SHA-256 of the bytes after, on a
  server without UIDL (the ledger rows then have no UIDL; two copies on the server need two rows);
- by Message-ID and SHA-256 also with UIDL, against ledger rows whose UIDL the server no longer
  lists: a server that renumbers its UIDLs (a mailbox moved, a new uidvalidity) or an account
  that gained UIDL support would otherwise deliver everything twice. Each such row vouches for one
  message, so two identical messages the server does list are two emails, as they should be.
- in delete mode only by content: a message is deleted only once this poll downloaded its bytes
  and they are committed here (stored now, or recognised by a row's Message-ID and SHA-256).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from mail.inbound.parsing import ParsedEmail, parse_headers
from models import Email, FetchState, FetchedMessage, MESSAGE_ID_CHARS, db, utcnow
from queries import chunks, insert_many

# How long a DELETED row outlives its message: a record of what this CRM deleted, and a guard
# against a server that shows a deleted message again after an unclear QUIT.
DELETED_KEEP_DAYS = 30


@dataclass(frozen=True)
class LedgerRow:
    id: int
    uidl: str | None
    state: FetchState
    size: int
    message_id: str
    sha256: str
    email_id: int | None
    first_seen_at: datetime


@dataclass
class PollItem:
    """A message to download, or to list as too large (TOP only)."""

    number: int  # message number in this POP3 session
    size: int  # LIST size, octets
    uidl: str | None
    too_large: bool
    headers: ParsedEmail | None = None  # headers already read with TOP (server without UIDL)
    replaces: LedgerRow | None = None  # its SKIPPED row, when the limit now lets it in


@dataclass
class Plan:
    items: list[PollItem] = field(default_factory=list)  # oldest first (by message number)
    forget: list[int] = field(default_factory=list)  # row ids whose message is gone
    skipped: int = 0  # too large, known, still on the server
    # Rows no listed message claimed (gone from the server, from before UIDLs were renumbered, or
    # under a UIDL not trusted this time), by (Message-ID, SHA-256): each can vouch for one
    # downloaded message with those bytes.
    spare: dict[tuple[str, str], list[LedgerRow]] = field(default_factory=dict)


def load_ledger(account_id: int) -> list[LedgerRow]:
    """Every ledger row of the account, as plain values (no ORM objects to expire)."""
    rows = db.session.execute(select(
        FetchedMessage.id, FetchedMessage.uidl, FetchedMessage.state, FetchedMessage.size,
        FetchedMessage.message_id, FetchedMessage.sha256, FetchedMessage.email_id, FetchedMessage.first_seen_at)
        .where(FetchedMessage.account_id == account_id).order_by(FetchedMessage.id))
    return [LedgerRow(*row) for row in rows]


def plan_by_uidl(rows: list[LedgerRow], uidls: dict[int, str], sizes: dict[int, int], limit: int,
                 delete_mode: bool, now: datetime | None = None) -> Plan:
    """Compare the server's UIDL listing with the ledger.

    A UIDL is trusted to name a message only when the server lists it once, one ledger row has
    it, and that row's size is the LIST size: some servers take the UIDL from an X-UIDL header
    the sender wrote. Otherwise the message is downloaded and recognised by its content.
    """
    times_listed = Counter(uidls.values())
    by_uidl: dict[str, list[LedgerRow]] = {}
    for row in rows:
        if row.uidl is not None:
            by_uidl.setdefault(row.uidl, []).append(row)
    plan = Plan()
    claimed: set[int] = set()
    for number in sorted(uidls):
        uidl, size = uidls[number], sizes.get(number, 0)
        row = _trusted(by_uidl.get(uidl, []), times_listed[uidl], size, claimed, delete_mode)
        if row is not None:
            claimed.add(row.id)
        _place(plan, number, size, uidl, row, limit)
    _unclaimed(plan, rows, claimed, now)
    return plan


def _trusted(candidates: list[LedgerRow], times_listed: int, size: int, claimed: set[int],
             delete_mode: bool) -> LedgerRow | None:
    """The ledger row this listing's UIDL alone proves is this message, or None."""
    free = [row for row in candidates if row.id not in claimed]
    skipped = [row for row in free if row.state is FetchState.SKIPPED]
    if skipped:  # too large: never deleted, and downloaded only to replace it: a wrong claim loses nothing
        return skipped[0]
    if delete_mode or times_listed != 1 or len(candidates) != 1 or not free or free[0].size != size:
        # Deleting needs this session's bytes (or the ledger's, recognised by content).
        return None
    return free[0]


def plan_without_uidl(rows: list[LedgerRow], sizes: dict[int, int], limit: int, delete_mode: bool,
                      top: Callable[[int], bytes], now: datetime | None = None) -> Plan:
    """Without UIDL, each message's headers (top(number)) give its Message-ID; with the LIST
    size that recognises it before downloading it (in delete mode only a too-large one: the rest
    are downloaded and recognised by content before DELE). Two copies of a message need two rows.
    Raises what top() raises."""
    by_key: dict[tuple[str, int], list[LedgerRow]] = {}
    for row in rows:
        if row.uidl is None:
            by_key.setdefault((row.message_id, row.size), []).append(row)
    plan = Plan()
    claimed: set[int] = set()
    for number in sorted(sizes):
        size = sizes[number]
        headers = parse_headers(top(number), utcnow())
        candidates = by_key.get((headers.message_id[:MESSAGE_ID_CHARS], size), [])
        row = next((row for row in candidates if not delete_mode or row.state is FetchState.SKIPPED), None)
        if row is not None:
            candidates.remove(row)
            claimed.add(row.id)
        item = _place(plan, number, size, None, row, limit)
        if item is not None and item.too_large:
            item.headers = headers  # read once: the too-large entry is made of these
    _unclaimed(plan, rows, claimed, now)
    return plan


def _unclaimed(plan: Plan, rows: list[LedgerRow], claimed: set[int], now: datetime | None) -> None:
    for row in rows:
        if row.id in claimed:
            continue
        if _forgettable(row, now):
            plan.forget.append(row.id)
        if row.state is not FetchState.SKIPPED:
            plan.spare.setdefault((row.message_id, row.sha256), []).append(row)


def _place(plan: Plan, number: int, size: int, uidl: str | None, row: LedgerRow | None,
           limit: int) -> PollItem | None:
    """Put one listed message where it belongs in the plan; returns its item if it is one."""
    too_large = size > limit
    if row is None:
        item = PollItem(number, size, uidl, too_large)
    elif row.state is FetchState.SKIPPED:
        if too_large:  # still too large: listed already, never deleted on the server
            plan.skipped += 1
            return None
        item = PollItem(number, size, uidl, False, replaces=row)
    else:  # here already, in leave mode: nothing to do
        return None
    plan.items.append(item)
    return item


def _forgettable(row: LedgerRow, now: datetime | None) -> bool:
    if row.state is not FetchState.DELETED:
        return True
    return row.first_seen_at < (now or utcnow()) - timedelta(days=DELETED_KEEP_DAYS)


def add_rows(rows: list[dict]) -> list[int]:
    """Insert ledger rows (FetchedMessage columns) with one statement; their ids, in order."""
    return insert_many(FetchedMessage, rows)


def replace_row(row_id: int, values: dict) -> None:
    """A SKIPPED row whose message is here in full now: update it, drop its headers-only email."""
    values = {k: v for k, v in values.items() if k in ("size", "message_id", "sha256", "state", "reason", "email_id")}
    old_email_id = db.session.scalar(select(FetchedMessage.email_id).where(FetchedMessage.id == row_id))
    db.session.execute(update(FetchedMessage).where(FetchedMessage.id == row_id).values(**values),
                       execution_options={"synchronize_session": False})
    if old_email_id is not None and old_email_id != values.get("email_id"):
        db.session.execute(delete(Email).where(Email.id == old_email_id),
                           execution_options={"synchronize_session": False})


def mark_deleted(row_ids: list[int]) -> None:
    for chunk in chunks(row_ids):
        db.session.execute(update(FetchedMessage).where(FetchedMessage.id.in_(chunk))
                           .values(state=FetchState.DELETED), execution_options={"synchronize_session": False})


def forget(row_ids: list[int]) -> None:
    for chunk in chunks(row_ids):
        db.session.execute(delete(FetchedMessage).where(FetchedMessage.id.in_(chunk)),
                           execution_options={"synchronize_session": False})
