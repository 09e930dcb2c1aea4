"""Leads and Contacts: search, save, delete, convert."""
from __future__ import annotations

from sqlalchemy import func, or_, select

from crm.paging import Page, contains_pattern, paginate
from mail import matching
from models import Contact, Lead, Record, RecordAddress, RecordKind, db, utcnow

PAGE_SIZE = 20
KIND_CLASSES = {RecordKind.LEAD: Lead, RecordKind.CONTACT: Contact}
EDITABLE_FIELDS = ("first_name", "last_name", "company", "email", "phone", "owner_id")


normalise_address = matching.normalise_address

def search(kind: RecordKind, q: str = "", page: int = 1) -> Page:
    """Records of one kind whose name, email or company contains `q`, by name, one page."""
    query = select(Record).where(Record.kind == kind)
    if kind is RecordKind.LEAD:
        query = query.where(Record.converted_contact_id.is_(None))
    q = q.strip().lower()
    if q:
        like = contains_pattern(q)
        full_name = func.lower(Record.first_name + " " + Record.last_name)
        query = query.where(
            or_(
                full_name.like(like, escape="\\"),
                func.lower(Record.last_name).like(like, escape="\\"),
                Record.email.like(like, escape="\\"),
                func.lower(Record.company).like(like, escape="\\"),
            )
        )
    return paginate(query.order_by(Record.last_name, Record.first_name, Record.id), page, PAGE_SIZE)


def get(kind: RecordKind, record_id: int) -> Record | None:
    record = db.session.get(Record, record_id)
    return record if record is not None and record.kind is kind else None


def save(record: Record, data: dict) -> Record:
    """Copy the editable fields from `data` onto the record, keep its address index, commit.

    `data["secondary_email"]`, when given, is the record's second address (empty: none).
    When an address is new to the record, CRM mail already here that involves it is linked.
    """
    for field in EDITABLE_FIELDS:
        if field in data:
            value = data[field]
            if isinstance(value, str):
                value = value.strip()
            setattr(record, field, value)
    record.email = normalise_address(record.email)
    db.session.add(record)
    db.session.flush()
    secondary = data.get("secondary_email", secondary_address(record) if record.id else "")
    _index_addresses(record, record.email, normalise_address(secondary))
    db.session.commit()
    return record


def secondary_address(record: Record) -> str:
    return db.session.scalar(select(RecordAddress.address).where(
        RecordAddress.record_id == record.id, RecordAddress.is_primary.is_(False)).limit(1)) or ""


def _index_addresses(record: Record, primary: str, secondary: str) -> None:
    """Make the record's address rows say exactly {primary, secondary}; link mail for new ones.

    A record's existing emails stay linked when an address goes: the link rows are not touched.
    """
    wanted = {a: a == primary for a in (primary, secondary) if a}
    rows = {row.address: row for row in db.session.scalars(
        select(RecordAddress).where(RecordAddress.record_id == record.id))}
    for address, row in rows.items():
        if address not in wanted:
            db.session.delete(row)
        else:
            row.is_primary = wanted[address]
    added = [a for a in wanted if a not in rows]
    for address in added:
        db.session.add(RecordAddress(record_id=record.id, address=address, is_primary=wanted[address]))
    db.session.flush()
    matching.link_existing(record.id, added)


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
        _index_addresses(contact, lead.email, secondary_address(lead))
    lead.converted_contact_id = contact.id
    lead.converted_at = utcnow()
    db.session.commit()
    return contact
