"""Leads and Contacts: search, save, delete, convert."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from collections.abc import Collection
from dataclasses import dataclass, field as dataclass_field

from models import Contact, Lead, Record, RecordAddress, RecordKind, User, db, normalise_address, utcnow
from queries import Page, full_text_match, paginate

PAGE_SIZE = 20
KIND_CLASSES = {RecordKind.LEAD: Lead, RecordKind.CONTACT: Contact}
EDITABLE_FIELDS = ("first_name", "last_name", "company", "email", "phone", "owner_id")
# The list's sortable columns (?sort=company, ?sort=-company for descending) and what they order by.
SORTS = {"name": (Record.last_name, Record.first_name), "company": (Record.company,), "email": (Record.email,),
         "owner": (User.name,)}
DEFAULT_SORT = "name"


@dataclass
class Saved:
    """A record written (flushed, not committed) and the addresses it newly has: the caller
    files the mail that involves them (mail.inbound.matching.file_new_addresses) and commits.

    A CRM user's own address is refused before a save (the record form says so beside the field).
    """

    record: Record
    added: list[str] = dataclass_field(default_factory=list)


def parse_sort(value: str | None) -> tuple[str, bool]:
    """(column, descending) from ?sort=; an unknown column sorts by name."""
    value = (value or "").strip()
    descending = value.startswith("-")
    column = value.lstrip("-")
    return (column, descending) if column in SORTS else (DEFAULT_SORT, False)


def search(kind: RecordKind, q: str = "", page: int = 1, sort: str = DEFAULT_SORT, descending: bool = False,
           owner_id: int | None = None) -> Page:
    """Records of one kind whose name, email or company hold the words of `q` (and owned by `owner_id`,
    when given: My Leads, My Contacts), sorted by a column of SORTS, one page."""
    query = (select(Record).join(User, User.id == Record.owner_id).where(Record.kind == kind)
             .options(joinedload(Record.owner)))  # one query a page
    if kind is RecordKind.LEAD:
        query = query.where(Record.converted_contact_id.is_(None))
    if owner_id is not None:
        query = query.where(Record.owner_id == owner_id)
    if q.strip():
        # Its words in the first or last name, company or email (models.Record.SEARCHED).
        query = query.where(full_text_match(q.strip(), "records", Record.id, Record.search_text))
    columns = [func.lower(c) for c in SORTS.get(sort, SORTS[DEFAULT_SORT])]
    order = [c.desc() for c in columns] if descending else columns
    return paginate(query.order_by(*order, Record.id.desc() if descending else Record.id), page, PAGE_SIZE)


def get(kind: RecordKind, record_id: int) -> Record | None:
    record = db.session.get(Record, record_id)
    return record if record is not None and record.kind is kind else None


def save(record: Record, data: dict) -> Saved:
    """Copy the editable fields from `data` onto the record and keep its address index; flush.

    `data["secondary_email"]`, when given, is the record's second address (empty: none).
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
    return Saved(record, _index_addresses(record, record.email, normalise_address(secondary)))


def secondary_address(record: Record) -> str:
    return db.session.scalar(select(RecordAddress.address).where(
        RecordAddress.record_id == record.id, RecordAddress.is_primary.is_(False)).limit(1)) or ""


def _index_addresses(record: Record, primary: str, secondary: str) -> list[str]:
    """Make the record's address rows say exactly {primary, secondary}; returns the new ones.

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
    return added


def new(kind: RecordKind) -> Record:
    return KIND_CLASSES[kind]()


def delete(record: Record) -> None:
    db.session.delete(record)
    db.session.commit()


def addresses_of(record: Record) -> list[str]:
    """The record's addresses: primary (its Email field) and secondary."""
    return [a for a in (record.email, secondary_address(record)) if a]


def convert(lead: Record, refused: Collection[str] = ()) -> Saved:
    """Convert a Lead into a Contact (an existing Contact with the same address is reused); flush.

    `refused` addresses are not given to a new Contact (a CRM user's own: never a customer's).
    Raises ValueError when the lead was converted already.
    """
    if lead.kind is not RecordKind.LEAD:
        raise ValueError("Only a Lead can be converted.")
    if lead.converted_contact_id is not None:
        raise ValueError("This Lead has been converted already.")
    contact, added = None, []
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
        primary, secondary = (a if a not in refused else "" for a in (lead.email, secondary_address(lead)))
        contact.email = primary
        added = _index_addresses(contact, primary, secondary)
    lead.converted_contact_id = contact.id
    lead.converted_at = utcnow()
    db.session.flush()
    return Saved(contact, added)
