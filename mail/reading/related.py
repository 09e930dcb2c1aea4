"""The Email related list of a Lead or Contact: what the viewer may see, one page, a fixed number of queries."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, select

from mail.reading import addon, conversations, sharing
from models import Email, EmailLink, User, db

PAGE_SIZE = 20


@dataclass
class RelatedEmail:
    email: Email
    owner_name: str
    audience: str | None  # for the viewer's own emails: who can see it; None for others' emails


@dataclass
class RelatedPage:
    """One page; there is no total, since counting every visible email would cost as much as the record is big."""

    items: list[RelatedEmail]
    page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def related_page(viewer: User, record_id: int, page: int = 1) -> RelatedPage:
    """Emails linked to the record that the viewer may see, newest first.

    Two queries whatever the number of emails: the page (read newest first from the links'
    (record, date) index, stopping one row after the page) with its owners' names, and the
    audience labels of the viewer's own emails on it.
    """
    page = max(1, page)
    rows = db.session.execute(
        select(Email, User.name)
        .join(EmailLink, and_(EmailLink.email_id == Email.id, EmailLink.record_id == record_id))
        .join(User, User.id == Email.owner_id)
        .where(sharing.visible_condition(viewer))
        .order_by(EmailLink.email_date.desc(), EmailLink.email_id.desc())
        .limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)).all()
    has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    own = [email.id for email, _ in rows if email.owner_id == viewer.id]
    labels = sharing.audience_labels(own, record_id)
    items = [RelatedEmail(email, name, labels.get(email.id)) for email, name in rows]
    return RelatedPage(items, page, has_next)


def list_context(viewer: User, record_id: int, page: int = 1) -> dict:
    """Everything the related list shows the viewer: one page of conversations, their mode, their
    Share Email box. What ticking the box would do is not part of it (share_effect: on request)."""
    return {"emails": conversations.related_conversations(viewer, record_id, page),
            "my_mode": sharing.mode_of(viewer.id), "share_email": addon.is_shared(viewer, record_id),
            "share_effect": None}


def share_effect(viewer: User, record_id: int) -> addon.Effect:
    """What ticking (or unticking) the viewer's Share Email box on the record would do: asked only
    when the viewer asks, since it counts their mail on the record twice."""
    return addon.share_preview(viewer, record_id, not addon.is_shared(viewer, record_id))
