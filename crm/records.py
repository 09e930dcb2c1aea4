"""Leads and Contacts: search, save, delete, convert."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select

from models import Contact, Lead, Record, RecordKind, db, utcnow

PAGE_SIZE = 20
KIND_CLASSES = {RecordKind.LEAD: Lead, RecordKind.CONTACT: Contact}
EDITABLE_FIELDS = ("first_name", "last_name", "company", "email", "phone", "owner_id")


def normalise_address(text: str | None) -> str:
    """The form every address is stored and looked up in: trimmed and lowercased."""
    return (text or "").strip().lower()


@dataclass
class Page:
    items: list[Record]
    page: int
    pages: int
    total: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def search(kind: RecordKind, q: str = "", page: int = 1) -> Page:
    """Records of one kind whose name, email or company contains `q`, by name, one page."""
    query = select(Record).where(Record.kind == kind)
    if kind is RecordKind.LEAD:
        query = query.where(Record.converted_contact_id.is_(None))
    q = q.strip().lower()
    if q:
        like = f"%{_escape_like(q)}%"
        full_name = func.lower(Record.first_name + " " + Record.last_name)
        query = query.where(
            or_(
                full_name.like(like, escape="\\"),
                func.lower(Record.last_name).like(like, escape="\\"),
                Record.email.like(like, escape="\\"),
                func.lower(Record.company).like(like, escape="\\"),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    items = db.session.scalars(
        query.order_by(Record.last_name, Record.first_name, Record.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    return Page(list(items), page, pages, total)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get(kind: RecordKind, record_id: int) -> Record | None:
    record = db.session.get(Record, record_id)
    return record if record is not None and record.kind is kind else None


def save(record: Record, data: dict) -> Record:
    """Copy the editable fields from `data` onto the record and commit it."""
    for field in EDITABLE_FIELDS:
        if field in data:
            value = data[field]
            if isinstance(value, str):
                value = value.strip()
            setattr(record, field, value)
    record.email = normalise_address(record.email)
    db.session.add(record)
    db.session.commit()
    return record


def new(kind: RecordKind) -> Record:
    return KIND_CLASSES[kind]()


def delete(record: Record) -> None:
    db.session.delete(record)
    db.session.commit()


def convert(lead: Record) -> Contact:
    """Convert a Lead into a Contact; an existing Contact with the same address is reused.

    Raises ValueError when the lead was converted already.
    """
    if lead.kind is not RecordKind.LEAD:
        raise ValueError("Only a Lead can be converted.")
    if lead.converted_contact_id is not None:
        raise ValueError("This Lead has been converted already.")
    contact = None
    if lead.email:
        contact = db.session.scalar(
            select(Contact).where(Contact.email == lead.email).order_by(Contact.id).limit(1)
        )
    if contact is None:
        contact = Contact(
            first_name=lead.first_name,
            last_name=lead.last_name,
            company=lead.company,
            email=lead.email,
            phone=lead.phone,
            owner_id=lead.owner_id,
        )
        db.session.add(contact)
        db.session.flush()
    lead.converted_contact_id = contact.id
    lead.converted_at = utcnow()
    db.session.commit()
    return contact
