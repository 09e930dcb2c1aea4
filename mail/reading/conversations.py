"""Conversations as a viewer sees them: one row per conversation, its messages, what records know.

Every row and every count comes from the messages the sharing rule lets the viewer see: a
conversation is listed by its latest visible message, counted over its visible messages, and
one with none visible does not exist. Each list costs a fixed number of queries: the page is
read newest first from an index and stops one row after the page (a message is listed when it
is its conversation's latest visible one), then one query sums up the page's conversations.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from mail.reading import sharing
from mail.reading.mailbox import MailView, view_conditions
from models import Attachment, Direction, Email, EmailLink, Record, User, db

RELATED_PAGE_SIZE = 20
MAILBOX_PAGE_SIZE = 25
PARTICIPANTS_SHOWN = 3


@dataclass
class ConversationRow:
    """One listed conversation: its latest visible message and what the viewer sees of the rest."""

    latest: Email
    owner_name: str = ""
    count: int = 1
    unread: int = 0  # the viewer's own unread messages in it
    participants: list[str] = field(default_factory=list)
    has_attachments: bool = False
    audience: str | None = None  # for the viewer's own latest message: who can see it

    @property
    def id(self) -> int | None:
        """The conversation's id; None for a message stored without one (read on its own)."""
        return self.latest.conversation_id


@dataclass
class ConversationPage:
    """One page; no total, since counting every conversation would cost as much as the mail is big."""

    items: list[ConversationRow]
    page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


# The later messages of a listed message's conversation: one alias for good, so that the sharing
# rule about it is built once (sharing.shared_with_others keeps it).
NEWER = aliased(Email, name="newer")


def _is_latest(conditions) -> ColumnElement:
    """The email (the emails table) is its conversation's latest among the messages `conditions`
    (about an alias) lets through. A correlated subquery read backwards from the conversation's
    (conversation, date) index per listed row, stopping at the first: never a join over all the
    mail (PostgreSQL planned NOT EXISTS as one, quadratic in the mailbox's size)."""
    newer = NEWER
    latest = (select(newer.id).where(newer.conversation_id == Email.conversation_id, *conditions(newer))
              .order_by(newer.date.desc(), newer.id.desc()).limit(1).correlate(Email).scalar_subquery())
    return or_(Email.conversation_id.is_(None), Email.id == latest)


def _linked(email, record_id: int):
    link = aliased(EmailLink)
    return exists().where(link.email_id == email.id, link.record_id == record_id)


def related_conversations(viewer: User, record_id: int, page: int = 1) -> ConversationPage:
    """The record's conversations the viewer may see, newest first; four queries."""
    page = max(1, page)
    latest_visible = _is_latest(lambda newer: [_linked(newer, record_id), sharing.visible_condition(viewer, newer)])
    rows = db.session.execute(
        select(Email, User.name)
        .join(EmailLink, and_(EmailLink.email_id == Email.id, EmailLink.record_id == record_id))
        .join(User, User.id == Email.owner_id)
        .where(sharing.visible_on_record(viewer, EmailLink, record_id=record_id), latest_visible)
        .order_by(EmailLink.email_date.desc(), EmailLink.email_id.desc())
        .limit(RELATED_PAGE_SIZE + 1).offset((page - 1) * RELATED_PAGE_SIZE)).all()
    items = [ConversationRow(email, name) for email, name in rows[:RELATED_PAGE_SIZE]]
    _sum_up(viewer, items, lambda: [sharing.visible_condition(viewer)], record_id)
    own = [row.latest.id for row in items if row.latest.owner_id == viewer.id]
    labels = sharing.audience_labels(own, record_id)
    for row in items:
        row.audience = labels.get(row.latest.id)
    return ConversationPage(items, page, len(rows) > RELATED_PAGE_SIZE)


def mailbox_conversations(viewer: User, view: MailView, page: int = 1) -> ConversationPage:
    """The viewer's own conversations with a message in this view, newest first; two queries.

    A conversation is placed by its latest message in the view and counted over all of the
    viewer's own messages in it (a reply in Sent counts in the Inbox's row too).
    """
    page = max(1, page)
    latest_in_view = _is_latest(lambda newer: [newer.owner_id == viewer.id, *view_conditions(newer, view)])
    emails = db.session.scalars(
        sharing.own_emails(viewer).where(*view_conditions(Email, view), latest_in_view)
        .order_by(Email.date.desc(), Email.id.desc())
        .limit(MAILBOX_PAGE_SIZE + 1).offset((page - 1) * MAILBOX_PAGE_SIZE)).all()
    items = [ConversationRow(email, viewer.name) for email in emails[:MAILBOX_PAGE_SIZE]]
    _sum_up(viewer, items, lambda: [Email.owner_id == viewer.id])
    return ConversationPage(items, page, len(emails) > MAILBOX_PAGE_SIZE)


def _sum_up(viewer: User, items: list[ConversationRow], conditions: Callable[[], list],
            record_id: int | None = None) -> None:
    """Counts, unread and participants of the page's conversations, from the messages that
    `conditions` lets through (what the viewer may see there; filed under `record_id` when
    given); one query."""
    ids = [row.latest.conversation_id for row in items if row.latest.conversation_id is not None]
    if not ids:
        return
    # Ordered here, not in SQL: an ORDER BY date led PostgreSQL to walk the date index of all mail.
    query = (select(Email.conversation_id, Email.owner_id, Email.is_read, Email.direction, Email.from_name,
                    Email.from_address, Email.has_attachments, User.name, Email.date, Email.id)
             .join(User, User.id == Email.owner_id).where(Email.conversation_id.in_(ids), *conditions()))
    if record_id is not None:
        # The record's messages of these conversations first, then the rule over those: asked in
        # one query, PostgreSQL misjudged the rule's selectivity and scanned every link per message.
        filed = db.session.scalars(select(EmailLink.email_id).join(Email, Email.id == EmailLink.email_id).where(
            EmailLink.record_id == record_id, Email.conversation_id.in_(ids))).all()
        query = query.where(Email.id.in_(filed))
    messages = sorted(db.session.execute(query).all(), key=lambda m: (m.date, m.id))
    by_conversation: dict[int, list] = {}
    for message in messages:
        by_conversation.setdefault(message.conversation_id, []).append(message)
    for row in items:
        found = by_conversation.get(row.latest.conversation_id)
        if not found:
            continue
        row.count = len(found)
        row.unread = sum(1 for m in found if m.owner_id == viewer.id and not m.is_read)
        row.has_attachments = any(m.has_attachments for m in found)
        names: list[str] = []
        for m in found:
            name = ("me" if m.owner_id == viewer.id else m.name) if m.direction is Direction.SENT else (
                m.from_name or m.from_address or "(unknown sender)")
            if name not in names:
                names.append(name)
        row.participants = names


@dataclass
class Filed:
    kind: str  # "leads" or "contacts": the URL's word
    record_id: int
    name: str


@dataclass
class ConversationMessage:
    email: Email
    attachments: list[Attachment]
    filed_under: list[Filed]
    audience: str | None  # the viewer's own message: who can see it and why


def conversation(viewer: User, conversation_id: int, record_id: int | None = None,
                 own_only: bool = False) -> list[ConversationMessage]:
    """The conversation's messages the viewer may see, oldest first (on a record page: those
    filed under it; in the Email tab: the viewer's own). Empty when none: answer it as missing.

    """
    query = (sharing.own_emails(viewer) if own_only else sharing.visible_emails(viewer)).where(
        Email.conversation_id == conversation_id).order_by(Email.date, Email.id)
    if record_id is not None:
        query = query.where(_linked(Email, record_id))
    emails = db.session.scalars(query).all()
    if not emails:
        return []
    ids = [e.id for e in emails]
    attachments: dict[int, list[Attachment]] = {}
    for a in db.session.scalars(select(Attachment).where(Attachment.email_id.in_(ids)).order_by(Attachment.id)):
        attachments.setdefault(a.email_id, []).append(a)
    filed = filed_under(ids)
    labels = sharing.audience_labels([e.id for e in emails if e.owner_id == viewer.id], record_id)
    return [ConversationMessage(e, attachments.get(e.id, []), filed.get(e.id, []), labels.get(e.id)) for e in emails]


def filed_under(email_ids: list[int]) -> dict[int, list[Filed]]:
    """The Leads and Contacts each email is linked to, by name; one query."""
    found: dict[int, list[Filed]] = {}
    if not email_ids:
        return found
    rows = db.session.execute(select(EmailLink.email_id, Record.id, Record.kind, Record.first_name, Record.last_name)
                              .join(Record, Record.id == EmailLink.record_id)
                              .where(EmailLink.email_id.in_(email_ids))
                              .order_by(Record.last_name, Record.first_name, Record.id))
    for email_id, rid, kind, first, last in rows:
        found.setdefault(email_id, []).append(Filed(kind.value + "s", rid, f"{first} {last}".strip()))
    return found


@dataclass(frozen=True)
class RecordMail:
    emails: int
    last_contacted: datetime | None


def record_mail(viewer: User, record_ids: list[int]) -> dict[int, RecordMail]:
    """How many emails of each record the viewer may see, and the latest one's date; one query."""
    if not record_ids:
        return {}
    rows = db.session.execute(
        select(EmailLink.record_id, func.count(), func.max(EmailLink.email_date))
        .join(Email, Email.id == EmailLink.email_id)
        .where(EmailLink.record_id.in_(record_ids), sharing.visible_condition(viewer))
        .group_by(EmailLink.record_id)).all()
    return {rid: RecordMail(count, last) for rid, count, last in rows}
