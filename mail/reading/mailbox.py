"""The Email tab's queries: a user's own mail by folder, label, read state and search."""
from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Boolean, bindparam, exists, select, text, update
from sqlalchemy.orm import aliased

from queries import full_text_match
from models import Attachment, DRAFTS, Email, EmailLink, INBOX, SENT, SendState, User, db, writing

UNREAD_SHOWN_MAX = 100  # a folder's unread messages counted up to this many: "99+" beyond, a bounded cost
# The side list from the (owner_id, folder, send_state, is_read) and (owner_id, label, date)
# indexes: each folder and label the user has, found by skipping from one to the next (a loose
# index scan: one seek each, however much mail a folder holds), and each folder's unread messages
# counted up to UNREAD_SHOWN_MAX. Never a scan of the mailbox.
_FOLDERS_SQL = text("""
WITH RECURSIVE folders(name) AS (
    SELECT (SELECT folder FROM emails WHERE owner_id = :owner ORDER BY folder LIMIT 1)
    UNION ALL
    SELECT (SELECT folder FROM emails WHERE owner_id = :owner AND folder > folders.name ORDER BY folder LIMIT 1)
    FROM folders WHERE folders.name IS NOT NULL
)
SELECT name,
    EXISTS (SELECT 1 FROM emails WHERE owner_id = :owner AND folder = folders.name AND send_state != :draft),
    (SELECT count(*) FROM (SELECT 1 FROM emails WHERE owner_id = :owner AND folder = folders.name
                           AND send_state != :draft AND is_read = :no LIMIT :cap) AS unread),
    EXISTS (SELECT 1 FROM emails WHERE owner_id = :owner AND folder = folders.name AND send_state = :draft),
    (SELECT count(*) FROM (SELECT 1 FROM emails WHERE owner_id = :owner AND folder = folders.name
                           AND send_state = :draft AND is_read = :no LIMIT :cap) AS unread_drafts)
FROM folders WHERE name IS NOT NULL
""")
_LABELS_SQL = text("""
WITH RECURSIVE labels(name) AS (
    SELECT (SELECT label FROM emails WHERE owner_id = :owner AND label > '' ORDER BY label LIMIT 1)
    UNION ALL
    SELECT (SELECT label FROM emails WHERE owner_id = :owner AND label > labels.name ORDER BY label LIMIT 1)
    FROM labels WHERE labels.name IS NOT NULL
)
SELECT name FROM labels WHERE name IS NOT NULL
""")


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
    unread: int  # counted up to UNREAD_SHOWN_MAX; more shows as "99+"

    @property
    def unread_text(self) -> str:
        return f"{UNREAD_SHOWN_MAX - 1}+" if self.unread >= UNREAD_SHOWN_MAX else str(self.unread)


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


def side_lists(viewer: User) -> dict:
    """The folders with their unread counts (Inbox and Sent always; Drafts, unsent mail whatever
    its folder, and customer folders when they hold mail), and the labels in use; two queries
    whose cost follows the folders and labels there are, not the mail in them."""
    rows = db.session.execute(_FOLDERS_SQL.bindparams(
        bindparam("no", type_=Boolean)), {"owner": viewer.id, "draft": SendState.DRAFT.value, "no": False,
                                           "cap": UNREAD_SHOWN_MAX}).all()
    unread: dict[str, int] = {INBOX: 0, SENT: 0}
    for name, has_mail, unread_mail, has_drafts, unread_drafts in rows:
        if has_mail:
            unread[name] = unread.get(name, 0) + unread_mail
        if has_drafts:
            unread[DRAFTS] = min(UNREAD_SHOWN_MAX, unread.get(DRAFTS, 0) + unread_drafts)
    named = [INBOX, SENT] + ([DRAFTS] if DRAFTS in unread else [])
    others = sorted((name for name in unread if name not in named), key=str.lower)
    labels = db.session.scalars(_LABELS_SQL, {"owner": viewer.id}).all()
    return {"folders": [Folder(name, unread[name]) for name in named + others], "labels": list(labels)}


def mark_read(viewer: User, emails: list[Email]) -> None:
    """Opening messages marks them read for their owner; others reading shared ones change nothing.
    Opening is a GET: the write runs in a transaction of its own (models.writing), only when
    something changed."""
    unread = [e.id for e in emails if e.owner_id == viewer.id and not e.is_read]
    if not unread:
        return
    with writing():
        db.session.execute(update(Email).where(Email.id.in_(unread), Email.owner_id == viewer.id)
                           .values(is_read=True).execution_options(synchronize_session=False))
    # The emails are expired by the commit: they read is_read back (True) when shown.


def folder_of(email: Email) -> str:
    return DRAFTS if email.send_state is SendState.DRAFT else email.folder


def attachments_of(email: Email) -> list[Attachment]:
    """The email's attachments, in order, without their content (deferred)."""
    return list(db.session.scalars(select(Attachment).where(Attachment.email_id == email.id).order_by(Attachment.id)))
