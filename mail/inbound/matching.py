"""Which Leads and Contacts an email involves, through the address index.

Only CRM mail is matched: mail fetched by the owner's CRM mailbox (their Mail Add-on choice, or
their default account until they choose) and mail sent from the CRM. The cost of matching is an
index look-up per address, whatever the number of records.

A CRM user's own address (sign-in, any POP3 account, any Send Mail As identity; active or
deactivated) is never a customer address: no email is linked through it, whatever a record holds,
so that no edit of a Lead or Contact can turn a colleague's whole mailbox into customer mail.
"""
from __future__ import annotations

from collections.abc import Iterable

from dataclasses import dataclass

from sqlalchemy import exists, func, literal, select, union_all

from queries import chunks
from models import (AddonSettings, Direction, Email, EmailLink, EmailParticipant, MailAccount, RecordAddress,
                    SendAs, User, db, normalise_address)

# Why an address is a user's own, as said beside a record's field: "... is the sign-in address of Ann".
WHY_USERS = {"sign-in": "the sign-in address of {}", "pop3": "the address of a POP3 account of {}",
             "send-as": "a Send Mail As address of {}"}


@dataclass(frozen=True)
class Filed:
    """An email newly linked to a record, and the record's address it was linked through."""

    email_id: int
    owner_id: int
    address: str


def _users_addresses():
    """Every CRM user's own addresses, normalised: (address, user_id, source)."""
    return union_all(
        select(func.lower(func.trim(User.email)).label("address"), User.id.label("user_id"),
               literal("sign-in").label("source")),
        select(func.lower(func.trim(MailAccount.email)), MailAccount.user_id, literal("pop3")),
        select(func.lower(func.trim(SendAs.from_address)), SendAs.user_id, literal("send-as")),
    ).subquery()


def users_addresses_among(addresses: Iterable[str]) -> dict[str, str]:
    """{normalised address: why it is a CRM user's own} for those of `addresses` that are."""
    wanted = sorted({normalise_address(a) for a in addresses if a})
    mine = _users_addresses()
    found: dict[str, str] = {}
    for chunk in chunks(wanted):
        rows = db.session.execute(select(mine.c.address, User.name, mine.c.source)
                                  .join(User, User.id == mine.c.user_id).where(mine.c.address.in_(chunk))
                                  .order_by(mine.c.source.desc()))  # the sign-in address first
        for address, name, source in rows:
            found.setdefault(address, WHY_USERS[source].format(name))
    return found


def customer_addresses(addresses: Iterable[str]) -> set[str]:
    """These addresses, normalised, less every CRM user's own."""
    wanted = {normalise_address(a) for a in addresses if a}
    return wanted - set(users_addresses_among(wanted))


def crm_mailbox_id(user_id: int) -> int | None:
    """The account that feeds the CRM for this user: their chosen mailbox, else their default."""
    chosen = db.session.scalar(select(AddonSettings.mailbox_account_id).where(AddonSettings.user_id == user_id))
    if chosen is not None:
        return chosen
    return db.session.scalar(select(MailAccount.id).where(MailAccount.user_id == user_id,
                                                          MailAccount.is_default.is_(True)))


def is_crm_mail(email: Email, mailbox_id: int | None) -> bool:
    return email.direction is Direction.SENT or (email.account_id is not None and email.account_id == mailbox_id)


def records_by_address(addresses: Iterable[str]) -> dict[str, set[int]]:
    """{normalised address: ids of the records that have it}, for a whole batch of mail at once.

    A CRM user's own address matches no record, even one that holds it.
    """
    wanted = sorted(customer_addresses(addresses))
    found: dict[str, set[int]] = {}
    for chunk in chunks(wanted):
        rows = db.session.execute(select(RecordAddress.address, RecordAddress.record_id)
                                  .where(RecordAddress.address.in_(chunk)))
        for address, record_id in rows:
            found.setdefault(address, set()).add(record_id)
    return found


def records_for(addresses: Iterable[str]) -> set[int]:
    """Ids of the records that have any of these addresses (primary or secondary)."""
    return {r for ids in records_by_address(addresses).values() for r in ids}


def link_email(email: Email, addresses: Iterable[str]) -> int:
    """Link a new email (flushed, so it has an id) to its records; returns how many. No commit."""
    record_ids = records_for(addresses)
    for record_id in record_ids:
        db.session.add(EmailLink(email_id=email.id, record_id=record_id, email_date=email.date,
                                 owner_id=email.owner_id))
    return len(record_ids)


def link_existing(record_id: int, addresses: Iterable[str]) -> list[Filed]:
    """A record got new addresses: link the CRM mail already here that involves them. No commit.

    Returns the emails newly linked, each with the address it was linked through; a CRM user's
    own address links nothing.
    """
    wanted = customer_addresses(addresses)
    if not wanted:
        return []
    already = exists().where(EmailLink.email_id == Email.id, EmailLink.record_id == record_id)
    rows = db.session.execute(select(Email, func.min(EmailParticipant.address))
                              .join(EmailParticipant, EmailParticipant.email_id == Email.id)
                              .where(EmailParticipant.address.in_(sorted(wanted)), ~already)
                              .group_by(Email.id).order_by(Email.id)).all()
    mailboxes: dict[int, int | None] = {}
    filed = []
    for email, address in rows:
        if email.owner_id not in mailboxes:
            mailboxes[email.owner_id] = crm_mailbox_id(email.owner_id)
        if is_crm_mail(email, mailboxes[email.owner_id]):
            db.session.add(EmailLink(email_id=email.id, record_id=record_id, email_date=email.date,
                                 owner_id=email.owner_id))
            filed.append(Filed(email.id, email.owner_id, address))
    db.session.flush()
    return filed


def file_new_addresses(record_id: int, addresses: Iterable[str]) -> list[Filed]:
    """A record was saved with new addresses (crm.records.Saved): link its mail; flush, no commit.

    The caller records in the owners' sharing history what a colleague's change made visible
    (mail.reading.addon.note_filed), then commits.
    """
    return link_existing(record_id, addresses)


def owner_addresses(user: User) -> set[str]:
    """The addresses that are the user's own: sign-in, every mailbox, every Send Mail As identity."""
    mine = _users_addresses()
    return set(db.session.scalars(select(mine.c.address).where(mine.c.user_id == user.id)))
