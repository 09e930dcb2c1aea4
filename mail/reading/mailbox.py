"""The Email tab's queries: a user's own mail by folder, label, read state and search."""
from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import exists, func, select
from sqlalchemy.orm import aliased

from queries import Page, full_text_match, paginate
from mail.reading.sharing import visible_emails
from models import Attachment, DRAFTS, Email, EmailLink, INBOX, SENT, SendState, User, db

PAGE_SIZE = 25


@dataclass(frozen=True)
class MailView:
    """Which of the user's mail a list shows: a folder, or a label across folders; then filters."""

    folder: str = INBOX
    label: str = ""
    unread: bool = False
    q: str = ""
    customer: bool = False  # only customer mail: filed under a Lead or Contact

    @classmethod
    def from_args(cls, args) -> MailView:
        return cls(folder=args.get("folder", "").strip() or INBOX, label=args.get("label", "").strip(),
                   unread=args.get("unread") == "1", q=args.get("q", "").strip(), customer=args.get("customer") == "1")

    @property
    def place(self) -> str:
        return self.label or self.folder

    def params(self, **changes) -> dict:
        """URL parameters for this view (with changes), defaults left out."""
        view = replace(self, **changes)
        params = {"label": view.label} if view.label else ({"folder": view.folder} if view.folder != INBOX else {})
        return (params | ({"unread": "1"} if view.unread else {}) | ({"customer": "1"} if view.customer else {})
                | ({"q": view.q} if view.q else {}))


@dataclass
class Folder:
    name: str
    total: int
    unread: int


def view_conditions(email, view: MailView) -> list:
    """What puts a message of `email` (the emails table or an alias of it) in this view."""
    if view.label:
        conditions = [email.label == view.label]
    elif view.folder == DRAFTS:
        conditions = [email.send_state == SendState.DRAFT]
    else:
        conditions = [email.folder == view.folder, email.send_state != SendState.DRAFT]
    if view.unread:
        conditions.append(email.is_read.is_(False))
    if view.customer:
        link = aliased(EmailLink)
        conditions.append(exists().where(link.email_id == email.id))
    if view.q:
        # Its words in the subject, names, addresses or text body (models.Email.SEARCHED).
        conditions.append(full_text_match(view.q, "emails", email.id, email.search_text))
    return conditions


def own_mail_page(viewer: User, view: MailView, page: int = 1) -> Page:
    """One page of the viewer's own mail in this view, message by message, newest first.

    Through visible_emails like every other read, though the owner always passes the rule.
    """
    query = visible_emails(viewer).where(Email.owner_id == viewer.id, *view_conditions(Email, view))
    return paginate(query.order_by(Email.date.desc(), Email.id.desc()), page, PAGE_SIZE)


def side_lists(viewer: User) -> dict:
    """The folders with their counts (Inbox and Sent always; Drafts, unsent mail whatever its
    folder, and customer folders when they hold mail), and the labels in use."""
    rows = db.session.execute(
        select(Email.folder, Email.send_state, func.count(), func.count().filter(Email.is_read.is_(False)))
        .where(Email.owner_id == viewer.id).group_by(Email.folder, Email.send_state)).all()
    counts: dict[str, list[int]] = {INBOX: [0, 0], SENT: [0, 0]}
    for folder, state, total, unread in rows:
        counted = counts.setdefault(DRAFTS if state is SendState.DRAFT else folder, [0, 0])
        counted[0] += total
        counted[1] += unread
    named = [INBOX, SENT] + ([DRAFTS] if DRAFTS in counts else [])
    others = sorted((name for name in counts if name not in named), key=str.lower)
    labels = db.session.scalars(select(Email.label).where(Email.owner_id == viewer.id, Email.label != "")
                                .distinct().order_by(Email.label)).all()
    return {"folders": [Folder(name, *counts[name]) for name in named + others], "labels": list(labels)}


def mark_read(viewer: User, emails: list[Email]) -> None:
    """Opening messages marks them read for their owner; others reading shared ones change nothing.
    Commits only when something changed."""
    unread = [e for e in emails if e.owner_id == viewer.id and not e.is_read]
    for email in unread:
        email.is_read = True
    if unread:
        db.session.commit()


def folder_of(email: Email) -> str:
    return DRAFTS if email.send_state is SendState.DRAFT else email.folder


def attachments_of(email: Email) -> list[Attachment]:
    """The email's attachments, in order, without their content (deferred)."""
    return list(db.session.scalars(select(Attachment).where(Attachment.email_id == email.id).order_by(Attachment.id)))
