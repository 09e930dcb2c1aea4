"""Store one batch of downloaded messages with their ledger rows (no commit): new ones as emails,
ones whose bytes are here already (a spare ledger row vouches for them) as ledger rows only."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from mail.inbound import fetch, ledger, store
from mail.inbound.ledger import PollItem
from models import AddonSettings, FetchState, MESSAGE_ID_CHARS, db, utcnow

log = logging.getLogger(__name__)


@dataclass
class Done:
    """One message of a batch stored (or recognised), with its ledger row; not committed yet."""

    item: PollItem
    row_id: int
    email_id: int | None
    new_email: bool
    linked: bool


class Storer:
    """Stores an account's batches; `spare` is the plan's (ledger.Plan.spare), used up as rows vouch."""

    def __init__(self, account_id: int, owner_id: int, crm_mailbox_id: int | None,
                 settings: AddonSettings | None, errors: list[str]) -> None:
        self.account_id = account_id
        self.owner_id = owner_id
        self.crm_mailbox_id = crm_mailbox_id
        self.settings = settings
        self.errors = errors  # sentences for the user about messages left for the next poll
        self.spare: dict[tuple[str, str], list[ledger.LedgerRow]] = {}

    def store(self, batch: list[fetch.Downloaded], *, isolate: bool) -> list[Done]:
        """Store the batch at once, or (isolate) each message in a savepoint, skipping any that
        fails (noted in errors). Raises on a failure that is not isolated, and on a lost connection."""
        if not isolate:
            return self._store_group(batch)
        done: list[Done] = []
        for one in batch:
            try:
                with db.session.begin_nested():
                    done += self._store_group([one])
            except SQLAlchemyError as exc:
                if _connection_lost(exc):
                    raise
                self._note_store_failure(one, exc)
            except Exception as exc:
                self._note_store_failure(one, exc)
        return done

    def _store_group(self, group: list[fetch.Downloaded]) -> list[Done]:
        """Store these messages and their ledger rows, one INSERT per table. Raises on any failure."""
        vouched = self._vouch(group)
        incoming = [store.Incoming(one.raw, one.parsed, one.item.size if one.raw is None else len(one.raw),
                                   one.deferred) for one, row in zip(group, vouched) if row is None]
        stored = iter(store.store_many(self.owner_id, self.account_id, incoming, crm_mailbox_id=self.crm_mailbox_id,
                                       settings=self.settings))
        done: list[Done] = []
        for one, row in zip(group, vouched):
            if row is None:
                new = next(stored)
                done.append(Done(one.item, 0, new.email_id, True, new.linked))
            else:  # these bytes are here already, under a UIDL the server no longer lists
                done.append(Done(one.item, 0, row.email_id, False, False))
        values = [self._ledger_values(one, d.email_id) for one, d in zip(group, done)]
        fresh = [i for i, one in enumerate(group) if one.item.replaces is None]
        for i, row_id in zip(fresh, ledger.add_rows([values[i] for i in fresh])):
            done[i].row_id = row_id
        for i, one in enumerate(group):
            if one.item.replaces is not None:  # a too-large message that fits the limit now
                ledger.replace_row(one.item.replaces.id, values[i])
                done[i].row_id = one.item.replaces.id
        for row in vouched:  # taken only now that nothing above failed
            if row is not None:
                self.spare[(row.message_id, row.sha256)].remove(row)
        return done

    def _vouch(self, group: list[fetch.Downloaded]) -> list[ledger.LedgerRow | None]:
        """For each message, a spare ledger row with its Message-ID and bytes, each row used once."""
        taken: set[int] = set()
        vouched: list[ledger.LedgerRow | None] = []
        for one in group:
            spare = [] if one.item.too_large else self.spare.get(_key(one), [])
            row = next((row for row in spare if row.id not in taken), None)
            if row is not None:
                taken.add(row.id)
            vouched.append(row)
        return vouched

    def _ledger_values(self, one: fetch.Downloaded, email_id: int | None) -> dict:
        skipped = one.item.too_large
        return {"account_id": self.account_id, "uidl": one.item.uidl, "size": one.item.size,
                "message_id": _key(one)[0], "sha256": "" if skipped else one.parsed.sha256,
                "state": FetchState.SKIPPED if skipped else FetchState.FETCHED,
                "reason": store.TOO_LARGE_NOTE if skipped else "", "email_id": email_id, "first_seen_at": utcnow()}

    def _note_store_failure(self, one: fetch.Downloaded, exc: BaseException) -> None:
        parsed = one.parsed
        log.error("mail account %s: message %s (%s) could not be stored: %s", self.account_id,
                  one.item.number, parsed.message_id[:100], describe(exc))
        self.errors.append(
            f"A message (\u201c{parsed.subject[:80] or 'no subject'}\u201d) could not be saved "
            f"({type(exc).__name__}); it stays on the server and will be tried again at the next poll.")


def _key(one: fetch.Downloaded) -> tuple[str, str]:
    """(Message-ID, SHA-256): how a second copy of the same message is recognised."""
    return one.parsed.message_id[:MESSAGE_ID_CHARS], one.parsed.sha256


def _connection_lost(exc: SQLAlchemyError) -> bool:
    return bool(getattr(exc, "connection_invalidated", False))


def describe(exc: BaseException) -> str:
    """The error without SQL parameters (they hold mail content)."""
    return f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}"[:500]
