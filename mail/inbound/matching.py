"""Which Leads and Contacts an email involves, through the address index.

Only CRM mail is matched: mail fetched by the owner's CRM mailbox (their Mail Add-on choice, or
their default account until they choose) and mail sent from the CRM. The cost of matching is an
index look-up per address, whatever the number of records.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import exists, select

from queries import chunks
from models import (AddonSettings, Direction, Email, EmailLink, EmailParticipant, MailAccount, RecordAddress,
                    User, db, normalise_address)


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
    """{normalised address: ids of the records that have it}, for a whole batch of mail at once."""
    wanted = sorted({normalise_address(a) for a in addresses if a})
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
        db.session.add(EmailLink(email_id=email.id, record_id=record_id, email_date=email.date))
    return len(record_ids)


def link_existing(record_id: int, addresses: Iterable[str]) -> int:
    """A record got new addresses: link the CRM mail already here that involves them. No commit.

    Returns how many emails were newly linked.
    """
    wanted = {normalise_address(a) for a in addresses if a}
    if not wanted:
        return 0
    involved = select(EmailParticipant.email_id).where(EmailParticipant.address.in_(wanted))
    already = exists().where(EmailLink.email_id == Email.id, EmailLink.record_id == record_id)
    candidates = db.session.scalars(select(Email).where(Email.id.in_(involved), ~already)).all()
    mailboxes: dict[int, int | None] = {}
    linked = 0
    for email in candidates:
        if email.owner_id not in mailboxes:
            mailboxes[email.owner_id] = crm_mailbox_id(email.owner_id)
        if is_crm_mail(email, mailboxes[email.owner_id]):
            db.session.add(EmailLink(email_id=email.id, record_id=record_id, email_date=email.date))
            linked += 1
    return linked


def file_new_addresses(record_id: int, addresses: Iterable[str]) -> int:
    """A record was saved with new addresses (crm.records.Saved): link its mail, commit."""
    linked = link_existing(record_id, addresses)
    db.session.commit()
    return linked


def owner_addresses(user: User) -> set[str]:
    """The addresses that are the owner's own: their sign-in and every mailbox they added."""
    own = {user.email}
    own.update(db.session.scalars(select(MailAccount.email).where(MailAccount.user_id == user.id)))
    return {normalise_address(a) for a in own}
