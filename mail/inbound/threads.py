"""Which conversation a message belongs to, decided when it is stored (fetched or sent).

A message joins the conversation of any message it names (In-Reply-To, References) or that
names it (a reply stored before its original): every Message-ID that a conversation's messages
carry or name is one of its ConversationKeys. A message that names nothing known (no In-Reply-To
and no References, or only ones we never stored) joins a conversation with the same normalised
subject and the same participants whose latest message is at most FALLBACK_WINDOW away;
otherwise it starts one. A message that names two conversations makes them one.

The rows are written in a fixed number of statements per batch, whatever its size.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models import MESSAGE_ID_CHARS, Conversation, ConversationKey, Email, db, normalise_address
from queries import chunks, insert_many

FALLBACK_WINDOW = timedelta(days=30)
# Reply and forward prefixes in the languages our users' customers write in, and list tags.
_PREFIX_RE = re.compile(r"^(\s*((re|fwd?|aw|wg|sv|vs|antw|tr|rif|r|ref)\s*(\[\d+\])?\s*[:：]|\[[^\]]{0,40}\]))+\s*",
                        re.IGNORECASE)
_SPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Threading:
    """What grouping reads of one message."""

    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    subject: str
    participants: frozenset[str]
    date: datetime

    def names(self) -> set[str]:
        """The Message-IDs this message names (its own included), cut to the column's width."""
        ids = {self.message_id, self.in_reply_to or "", *self.references}
        return {i[:MESSAGE_ID_CHARS] for i in ids if i}


def normalise_subject(subject: str) -> str:
    """The subject without Re:/Fwd:/AW: prefixes and list tags, spaces collapsed, lower case."""
    return _SPACE_RE.sub(" ", _PREFIX_RE.sub("", subject or "")).strip().lower()


def fallback_key(subject: str, participants: Iterable[str]) -> str | None:
    """One hash of the normalised subject and the set of participants; None without a subject
    (every "(no subject)" mail between two people is not one conversation)."""
    normalised = normalise_subject(subject)
    if not normalised:
        return None
    people = sorted({normalise_address(p) for p in participants if p})
    return hashlib.sha256("\n".join([normalised, *people]).encode()).hexdigest()


def assign(messages: list[Threading]) -> list[int]:
    """The conversation id of each message, in order; creates conversations and keys. No commit."""
    if not messages:
        return []
    names = [m.names() for m in messages]
    known = _known({n for group in names for n in group})
    # Messages of the batch that name one another are one group (union-find over their names).
    parent = list(range(len(messages)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[str, int] = {}
    for i, group in enumerate(names):
        for name in group:
            j = first_with.setdefault(name, i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(messages)):
        groups.setdefault(root(i), []).append(i)
    conversation_of: dict[int, int] = {}
    pending: list[list[int]] = []
    for members in groups.values():
        found = sorted({known[n] for i in members for n in names[i] if n in known})
        if found:
            keep = found[0]
            _merge(keep, found[1:])
            conversation_of.update((i, keep) for i in members)
        else:
            pending.append(members)
    _by_subject(messages, pending, conversation_of)
    _write_keys(names, conversation_of, known)
    _touch(messages, conversation_of)
    return [conversation_of[i] for i in range(len(messages))]


def _known(names: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in chunks(sorted(names)):
        found.update(db.session.execute(select(ConversationKey.message_id, ConversationKey.conversation_id)
                                        .where(ConversationKey.message_id.in_(chunk))).tuples().all())
    return found


def _merge(keep: int, others: list[int]) -> None:
    """A message named two conversations: they are one from now on."""
    if not others:
        return
    for model in (Email, ConversationKey):
        db.session.execute(update(model).where(model.conversation_id.in_(others)).values(conversation_id=keep),
                           execution_options={"synchronize_session": False})
    db.session.execute(update(Conversation).where(Conversation.id.in_(others)).values(fallback_key=None))


def _by_subject(messages: list[Threading], pending: list[list[int]], conversation_of: dict[int, int]) -> None:
    """Groups that name nothing known: the same subject and people within the window, or new."""
    keys = [fallback_key(messages[m[0]].subject, messages[m[0]].participants) for m in pending]
    candidates: dict[str, list[tuple[int, datetime]]] = {}
    for chunk in chunks(sorted({k for k in keys if k})):
        for cid, key, last in db.session.execute(select(Conversation.id, Conversation.fallback_key,
                                                        Conversation.last_date)
                                                 .where(Conversation.fallback_key.in_(chunk))):
            candidates.setdefault(key, []).append((cid, last))
    new_rows: list[dict] = []
    new_for: list[list[int]] = []
    for members, key in zip(pending, keys):
        date = max(messages[i].date for i in members)
        near = [cid for cid, last in candidates.get(key, []) if abs(last - date) <= FALLBACK_WINDOW] if key else []
        if near:
            conversation_of.update((i, max(near)) for i in members)
            continue
        # A conversation this batch starts with the same subject and people: join it.
        joined = next((n for n, row in enumerate(new_rows) if key and row["fallback_key"] == key
                       and abs(row["last_date"] - date) <= FALLBACK_WINDOW), None)
        if joined is not None:
            new_for[joined] += members
            new_rows[joined]["last_date"] = max(new_rows[joined]["last_date"], date)
            continue
        new_rows.append({"fallback_key": key, "last_date": date})
        new_for.append(list(members))
    for members, cid in zip(new_for, insert_many(Conversation, new_rows)):
        conversation_of.update((i, cid) for i in members)


def _write_keys(names: list[set[str]], conversation_of: dict[int, int], known: dict[str, int]) -> None:
    rows = {}
    for i, group in enumerate(names):
        for name in group:
            if name not in known:
                rows.setdefault(name, conversation_of[i])
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    # Another process may store the same thread at the same moment: its key stands.
    db.session.execute(insert(ConversationKey).on_conflict_do_nothing(),
                       [{"message_id": k, "conversation_id": v} for k, v in rows.items()])


def _touch(messages: list[Threading], conversation_of: dict[int, int]) -> None:
    """Keep each conversation's latest date (the fallback's window is measured from it)."""
    latest: dict[int, datetime] = {}
    for i, cid in conversation_of.items():
        if cid not in latest or messages[i].date > latest[cid]:
            latest[cid] = messages[i].date
    rows = [{"cid": cid, "date": date} for cid, date in latest.items()]
    table = Conversation.__table__
    # Core, not ORM: several parameter sets with a WHERE of our own (not the ORM's bulk by key).
    db.session.connection().execute(update(table).where(table.c.id == bindparam("cid")).values(
        last_date=case((table.c.last_date < bindparam("date"), bindparam("date")), else_=table.c.last_date)), rows)
