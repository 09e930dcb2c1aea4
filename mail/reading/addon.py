"""Each user's Mail Add-on settings, what a change would do before it is saved, and its record."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, select, update

from mail.errors import counted
from mail.reading import sharing
from queries import chunks
from models import (INBOX, AddonSettings, ConsolidateAs, Direction, Email, EmailLink, ExcludedDomain, Record,
                    RecordShare, SendState, SharingChange, SharingMode, User, db, domain_for_people, normalise_domain)

MAX_EXCLUDED_DOMAINS = 5
MAX_NOTICES = 20  # shown at once on the Email tab and the settings page; all stay in the history
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")


@dataclass
class AddonChoice:
    """What the settings form says (or a Share Email checkbox changes)."""

    mailbox_account_id: int | None
    mode: SharingMode
    excluded: list[str]
    consolidate: bool
    consolidate_as: ConsolidateAs
    consolidate_name: str


@dataclass
class Effect:
    """How many of the user's emails, on how many records, a change shows to others or hides."""

    shown: int = 0
    hidden: int = 0
    shown_records: int = 0
    hidden_records: int = 0

    @property
    def changes(self) -> bool:
        return bool(self.shown or self.hidden)

    def sentence(self) -> str:
        parts = []
        if self.shown:
            parts.append(f"{counted(self.shown, 'email')} on {counted(self.shown_records, 'record')} "
                         f"{_become(self.shown)} visible to others")
        if self.hidden:
            parts.append(f"{counted(self.hidden, 'email')} on {counted(self.hidden_records, 'record')} "
                         f"{_become(self.hidden)} hidden from others")
        return ("; ".join(parts) + ".") if parts else "No email changes who can see it."


def _become(count: int) -> str:
    return "becomes" if count == 1 else "become"


def parse_domains(text: str) -> list[str]:
    """Exclude Domains from free text (commas, spaces, lines), validated and normalised
    (models.normalise_domain: Unicode domains are accepted and kept in their ASCII form).

    Raises ValueError with a sentence for a bad domain or more than five.
    """
    domains = []
    for written in re.split(r"[\s,;]+", text.strip()):
        item = normalise_domain(written.removeprefix("@"))
        if not item:
            continue
        if "@" in item or not _DOMAIN.match(item):
            raise ValueError(f"“{written}” is not a domain; write it like example.com.")
        if item not in domains:
            domains.append(item)
    if len(domains) > MAX_EXCLUDED_DOMAINS:
        raise ValueError(f"You can exclude at most {MAX_EXCLUDED_DOMAINS} domains.")
    return domains


def settings_of(user: User) -> AddonSettings:
    """The user's settings row, or unsaved defaults (Private) when they never saved any."""
    return db.session.get(AddonSettings, user.id) or AddonSettings(
        user_id=user.id, mailbox_account_id=None, sharing_mode=SharingMode.PRIVATE, consolidate=False,
        consolidate_as=ConsolidateAs.FOLDER, consolidate_name="Customers")


def excluded_of(user: User) -> list[str]:
    return list(db.session.scalars(select(ExcludedDomain.domain).where(ExcludedDomain.user_id == user.id)
                                   .order_by(ExcludedDomain.domain)))


def current_choice(user: User) -> AddonChoice:
    s = settings_of(user)
    return AddonChoice(s.mailbox_account_id, s.sharing_mode, excluded_of(user), s.consolidate,
                       s.consolidate_as, s.consolidate_name)


def _shared_ids(user: User, record_id: int | None = None, as_if: sharing.AsIf | None = None) -> set[int]:
    query = select(Email.id).where(Email.owner_id == user.id, sharing.shared_with_others(as_if))
    if record_id is not None:  # a Share Email box can only change the emails linked to its record
        query = query.where(Email.id.in_(select(EmailLink.email_id).where(EmailLink.record_id == record_id)))
    return set(db.session.scalars(query))


def _records_of(email_ids: set[int]) -> int:
    if not email_ids:
        return 0
    return db.session.scalar(select(func.count(func.distinct(EmailLink.record_id)))
                             .where(EmailLink.email_id.in_(email_ids))) or 0


def _apply(user: User, choice: AddonChoice) -> None:
    row = db.session.get(AddonSettings, user.id)
    if row is None:
        row = AddonSettings(user_id=user.id)
        db.session.add(row)
    row.mailbox_account_id = choice.mailbox_account_id
    row.sharing_mode = choice.mode
    row.consolidate, row.consolidate_as, row.consolidate_name = (
        choice.consolidate, choice.consolidate_as, choice.consolidate_name)
    db.session.execute(delete(ExcludedDomain).where(ExcludedDomain.user_id == user.id))
    db.session.add_all(ExcludedDomain(user_id=user.id, domain=d) for d in choice.excluded)
    db.session.flush()


def _measure(user: User, change, record_id: int | None = None) -> Effect:
    """Apply `change` inside a savepoint, count with the sharing rule itself, roll it back.

    The preview cannot disagree with what saving does: it is the same rule on the same rows.
    With `record_id`, only that record's emails are counted.
    """
    before = _shared_ids(user, record_id)
    savepoint = db.session.begin_nested()
    try:
        change()
        after = _shared_ids(user, record_id)
    finally:
        savepoint.rollback()
    shown, hidden = after - before, before - after
    return Effect(len(shown), len(hidden), _records_of(shown), _records_of(hidden))


def preview(user: User, choice: AddonChoice) -> Effect:
    return _measure(user, lambda: _apply(user, choice))


def save(user: User, choice: AddonChoice) -> Effect:
    """Save the settings; a change of who can see what is recorded (who, when, before, after).
    Customer mail already fetched follows a change of consolidation (see refile)."""
    before = current_choice(user)
    effect = preview(user, choice)
    _apply(user, choice)
    refile(user, before, choice)
    if describe(before) != describe(choice) or effect.changes:
        db.session.add(SharingChange(user_id=user.id, what="Sharing settings", before=describe(before),
                                     after=describe(choice), effect=effect.sentence()))
    db.session.commit()
    return effect


def _place(choice: AddonChoice) -> tuple[ConsolidateAs, str] | None:
    return (choice.consolidate_as, choice.consolidate_name) if choice.consolidate and choice.consolidate_name else None


def refile(user: User, before: AddonChoice, after: AddonChoice) -> None:
    """Move the user's customer mail (received, linked to a record) out of the consolidation
    folder or label they had into the one they chose, as fetching files new mail
    (mail.inbound.store), so the folder or label holds the old mail as well as the new."""
    old, new = _place(before), _place(after)
    if old == new:
        return
    mine = Email.owner_id == user.id
    if old and old[0] is ConsolidateAs.FOLDER:
        db.session.execute(update(Email).where(mine, Email.folder == old[1]).values(folder=INBOX))
    elif old:
        db.session.execute(update(Email).where(mine, Email.label == old[1]).values(label=""))
    if new:
        customer = and_(mine, Email.direction == Direction.RECEIVED, Email.send_state != SendState.DRAFT,
                        Email.id.in_(select(EmailLink.email_id)))
        if new[0] is ConsolidateAs.FOLDER:
            db.session.execute(update(Email).where(customer, Email.folder == INBOX).values(folder=new[1]))
        else:
            db.session.execute(update(Email).where(customer).values(label=new[1]))
    db.session.flush()


def consolidated_count(user: User) -> int:
    """How many emails are in the user's consolidation folder or carry its label (0 when off)."""
    place = _place(current_choice(user))
    if place is None:
        return 0
    column = Email.folder if place[0] is ConsolidateAs.FOLDER else Email.label
    return db.session.scalar(select(func.count()).select_from(Email).where(Email.owner_id == user.id,
                                                                           column == place[1])) or 0


def describe(choice: AddonChoice) -> str:
    text = choice.mode.label
    if choice.mode is SharingMode.PUBLIC and choice.excluded:
        text += "; Exclude Domains: " + ", ".join(map(domain_for_people, choice.excluded))
    return text


def is_shared(user: User, record_id: int) -> bool:
    return db.session.get(RecordShare, (user.id, record_id)) is not None


def _set_share(user: User, record_id: int, shared: bool) -> None:
    row = db.session.get(RecordShare, (user.id, record_id))
    if shared and row is None:
        db.session.add(RecordShare(owner_id=user.id, record_id=record_id))
    elif not shared and row is not None:
        db.session.delete(row)
    db.session.flush()


def share_preview(user: User, record_id: int, shared: bool) -> Effect:
    """What ticking (or unticking) Share Email on the record would do; reads only, so that the
    record page, which asks this on every view, never writes (the rule asked "as if")."""
    before = _shared_ids(user, record_id)
    after = _shared_ids(user, record_id, sharing.AsIf(record_id, shared=shared))
    shown, hidden = after - before, before - after
    return Effect(len(shown), len(hidden), _records_of(shown), _records_of(hidden))


def set_share(user: User, record_id: int, record_name: str, shared: bool) -> Effect:
    """Tick or untick Share Email on a record; recorded like any change of sharing."""
    if is_shared(user, record_id) == shared:
        return Effect()
    effect = share_preview(user, record_id, shared)
    _set_share(user, record_id, shared)
    db.session.add(SharingChange(user_id=user.id, what=f"Share Email on {record_name}",
                                 before="Shared" if not shared else "Not shared",
                                 after="Shared" if shared else "Not shared", effect=effect.sentence()))
    db.session.commit()
    return effect


def history(user: User, limit: int = 100) -> list[SharingChange]:
    return list(db.session.scalars(select(SharingChange).where(SharingChange.user_id == user.id)
                                   .order_by(SharingChange.at.desc(), SharingChange.id.desc()).limit(limit)))


def note_filed(by: User | None, record_id: int, filed) -> None:
    """After a record change linked these emails (mail.inbound.matching.Filed): when someone other
    than their owner made it, record in each owner's sharing history what became visible to
    others through it, with a notice for the owner; then commit.

    An email "became visible" when the rule shares it now and did not before this record's link.
    """
    theirs = [f for f in filed if by is not None and f.owner_id != by.id]
    shown: set[int] = set()
    for chunk in chunks([f.email_id for f in theirs]):
        now = set(db.session.scalars(select(Email.id).where(Email.id.in_(chunk), sharing.shared_with_others())))
        before = set(db.session.scalars(select(Email.id).where(
            Email.id.in_(chunk), sharing.shared_with_others(sharing.AsIf(record_id, unlinked=True)))))
        shown |= now - before
    counts: dict[tuple[int, str], int] = {}
    for f in theirs:
        if f.email_id in shown:
            counts[f.owner_id, f.address] = counts.get((f.owner_id, f.address), 0) + 1
    record = db.session.get(Record, record_id) if counts else None
    for (owner_id, address), count in sorted(counts.items()):
        db.session.add(SharingChange(
            user_id=owner_id, by_user_id=by.id, record_id=record_id, notice=True,
            what=f"{by.name} linked your email to {record.full_name}"[:80],
            before="Not visible to others", after="Visible to others",
            effect=(f"{counted(count, 'email')} of yours with {address} became visible to others: "
                    f"{by.name} gave {record.full_name} the address {address}.")))
    db.session.commit()


def notices(user: User) -> list[SharingChange]:
    """Changes others made to who can see the user's email that the user has not dismissed yet."""
    return list(db.session.scalars(select(SharingChange).where(SharingChange.user_id == user.id,
                                                               SharingChange.notice.is_(True))
                                   .order_by(SharingChange.id.desc()).limit(MAX_NOTICES)))


def dismiss_notice(user: User, change_id: int) -> None:
    """The user has seen it: it leaves their pages and stays in their history."""
    change = db.session.get(SharingChange, change_id)
    if change is not None and change.user_id == user.id:
        change.notice = False
        db.session.commit()
