"""Who may see an email: decided here and nowhere else.

The owner of an email (whose mailbox fetched it, or who sent it from the CRM) always sees it.
Another active user sees it only when it is customer mail (linked to a Lead or Contact), it is
not an unsent draft, and:
  - the owner is Public and the email is not excluded: a received email is excluded when its
    sender (From) is at one of the owner's Exclude Domains, an email the owner sent when any of
    its To recipients is; Cc alone never makes an email private (a domain covers its subdomains;
    domains are compared as models.normalise_domain writes them); or
  - the owner is Custom and has ticked Share Email on a record the email is linked to.
A Private owner's mail (and the mail of a user who never saved settings) is seen by no one else:
administrators included. Visibility is computed at read time from the current settings, so any
change takes effect on the next request, both ways.

`shared_with_others()` is that rule as one SQL expression; `visible_emails()` filters with it,
`can_see()` asks the database the same question about one email, and the labels that tell an
owner who can see their mail are computed from the same expression, never copied. `AsIf` asks
the same expression about a state one step away (Share Email ticked or not, a link not yet
made), so that previews and the sharing history never write to find out.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, false, literal, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from models import (AddonSettings, Direction, Email, EmailLink, EmailParticipant, ExcludedDomain, RecordShare,
                    SendState, SharingMode, User, db, domain_for_people)

ONLY_YOU = "Only you"
# The owner's label when an Exclude Domain is why: "Only you: from an excluded domain, acme.example".
EXCLUDED_BY = {Direction.RECEIVED: "Only you: from an excluded domain, {}",
               Direction.SENT: "Only you: to an excluded domain, {}"}
EVERYONE = "Everyone"
THROUGH_THIS_RECORD = "Everyone: shared through this record"


def mode_of(user_id: int) -> SharingMode:
    """The user's sharing mode; Private until they save settings."""
    mode = db.session.scalar(select(AddonSettings.sharing_mode).where(AddonSettings.user_id == user_id))
    return mode or SharingMode.PRIVATE


def _owner_mode(email=Email) -> ColumnElement:
    return (select(AddonSettings.sharing_mode).where(AddonSettings.user_id == email.owner_id)
            .correlate(email).scalar_subquery())


def _excluding_domains(email=Email):
    """The owner's Exclude Domains that exclude this email: its sender's when received, any To
    recipient's when the owner sent it (Cc never counts)."""
    p = aliased(EmailParticipant)
    decisive_role = or_(and_(email.direction == Direction.SENT, p.role == "to"),
                        and_(email.direction != Direction.SENT, p.role == "from"))
    return (select(ExcludedDomain.domain).where(
        ExcludedDomain.user_id == email.owner_id, p.email_id == email.id, decisive_role,
        or_(p.domain == ExcludedDomain.domain, p.domain.like(literal("%.") + ExcludedDomain.domain)))
        # Correlated to the email row explicitly: nested in EXISTS, it would otherwise not be.
        .correlate(email))


@dataclass(frozen=True)
class AsIf:
    """The rule asked of a state one step away from the database's, read-only (for previews and
    for what a change made visible): as if Share Email on `record_id` were `shared` (when not
    None), or as if the emails were not linked to `record_id` (when `unlinked`)."""

    record_id: int
    shared: bool | None = None
    unlinked: bool = False


def _links(link, as_if: AsIf | None, email=Email) -> list[ColumnElement]:
    conditions = [link.email_id == email.id]
    if as_if is not None and as_if.unlinked:
        conditions.append(link.record_id != as_if.record_id)
    return conditions


def _shared_through_record(record_id: int | None = None, as_if: AsIf | None = None, email=Email) -> ColumnElement:
    """The owner ticked Share Email on a record this email is linked to (or on this one record)."""
    link = aliased(EmailLink)  # its own alias: the outer query may join email_links itself
    ticked = exists().where(RecordShare.record_id == link.record_id, RecordShare.owner_id == email.owner_id)
    if as_if is not None and as_if.shared is not None:
        ticked = (or_(ticked, link.record_id == as_if.record_id) if as_if.shared
                  else and_(ticked, link.record_id != as_if.record_id))
    condition = exists().where(*_links(link, as_if, email), ticked)
    if record_id is not None:
        condition = condition.where(link.record_id == record_id)
    return condition


def _may_share(email=Email) -> ColumnElement:
    """The owner saved settings in a mode that shares (Public or Custom): asked first, so that a
    Private owner's mail, or that of an owner without a settings row, runs no other branch."""
    return exists().where(AddonSettings.user_id == email.owner_id,
                          AddonSettings.sharing_mode.in_((SharingMode.PUBLIC, SharingMode.CUSTOM)))


# The rule as it stands (no AsIf), built once per table or long-lived alias: building it anew
# (its aliases, coercions and subqueries) was a third of the CPU of a page that lists mail. An
# expression is immutable and may go into any number of statements; each kept one has aliases of
# its own, so two of them in one statement never share a name. Bounded: a caller handing in a
# fresh alias each time gets a fresh rule each time rather than filling this up.
_BUILT_RULES: dict = {}
_BUILT_RULES_MAX = 8


def shared_with_others(as_if: AsIf | None = None, email=Email) -> ColumnElement:
    """True when users other than the owner may see the email (the rule above, as SQL).

    `email` is the emails table or an alias of it (conversations ask about a second row).
    """
    if as_if is not None:
        return _shared_with_others(as_if, email)
    rule = _BUILT_RULES.get(email)
    if rule is None:
        rule = _shared_with_others(None, email)
        if len(_BUILT_RULES) < _BUILT_RULES_MAX:
            _BUILT_RULES[email] = rule
    return rule


def _shared_with_others(as_if: AsIf | None, email) -> ColumnElement:
    customer_mail = exists().where(*_links(aliased(EmailLink), as_if, email))
    mode = _owner_mode(email)
    return and_(
        _may_share(email),
        email.send_state != SendState.DRAFT,
        customer_mail,
        or_(and_(mode == SharingMode.PUBLIC, ~_excluding_domains(email).exists()),
            and_(mode == SharingMode.CUSTOM, _shared_through_record(as_if=as_if, email=email))),
    )


def own_condition(viewer: User, email=Email) -> ColumnElement:
    """The viewer's own mail, which the viewer always sees: selected as such, without the rule."""
    return email.owner_id == viewer.id if viewer.active else false()


def visible_condition(viewer: User, email=Email) -> ColumnElement:
    """The rule for this viewer as SQL, about `email` (the emails table or an alias of it): their
    own mail, and other owners' mail that the rule shares (asked of that mail only)."""
    if not viewer.active:
        return false()
    return or_(email.owner_id == viewer.id, and_(email.owner_id != viewer.id, shared_with_others(email=email)))


def _owners_sharing_all_of(record_id):
    """Owners whose every email linked to the record is shared (drafts aside): Public without
    Exclude Domains, and Custom who ticked Share Email on this record. `record_id` is a number
    (uncorrelated: asked once a query) or the link's column."""
    return select(AddonSettings.user_id).where(or_(
        and_(AddonSettings.sharing_mode == SharingMode.PUBLIC,
             ~exists().where(ExcludedDomain.user_id == AddonSettings.user_id)),
        and_(AddonSettings.sharing_mode == SharingMode.CUSTOM,
             exists().where(RecordShare.owner_id == AddonSettings.user_id, RecordShare.record_id == record_id))))


def _owners_sharing_some_of(record_id):
    """Owners whose emails linked to the record are shared one by one: Public with Exclude Domains
    (an email's participants decide), and Custom who did not tick this record but ticked another
    (an email's other links decide). Everyone else (Private, no settings row, Custom who ticked
    nothing) shares none of it."""
    return select(AddonSettings.user_id).where(or_(
        and_(AddonSettings.sharing_mode == SharingMode.PUBLIC,
             exists().where(ExcludedDomain.user_id == AddonSettings.user_id)),
        and_(AddonSettings.sharing_mode == SharingMode.CUSTOM,
             ~exists().where(RecordShare.owner_id == AddonSettings.user_id, RecordShare.record_id == record_id),
             exists().where(RecordShare.owner_id == AddonSettings.user_id))))


def visible_on_record(viewer: User, link, email=Email, record_id: int | None = None) -> ColumnElement:
    """The rule for the viewer about `email` reached through `link` (an EmailLink row or alias),
    decided owner by owner from the owner copied onto the link: the mail of owners who share none
    of it costs one look at the link, the mail of owners who share all of it no rule at all, and
    only the owners who share some of it ask the rule email by email. The same answers as
    visible_condition (the truth tables ask both).

    With `record_id` (the related list: one record) the owners are decided once a query. Over
    many records at once PostgreSQL planned this form as a hash join over every email (1.1 s at
    1M), so conversations.record_mail asks visible_condition instead.
    """
    if not viewer.active:
        return false()
    record_id = link.record_id if record_id is None else record_id
    return or_(link.owner_id == viewer.id,
               and_(link.owner_id.in_(_owners_sharing_all_of(record_id)), email.send_state != SendState.DRAFT),
               and_(link.owner_id.in_(_owners_sharing_some_of(record_id)), link.owner_id != viewer.id,
                    shared_with_others(email=email)))


def visible_emails(viewer: User):
    """A query of every email the viewer may see; add filters and ordering to it."""
    return select(Email).where(visible_condition(viewer))


def own_emails(viewer: User):
    """A query of the viewer's own mail (the Email tab): no rule to ask, the owner sees it all."""
    return select(Email).where(own_condition(viewer))


def can_see(viewer: User, email_id: int) -> bool:
    """The same rule for one email, asked of the database."""
    return bool(db.session.scalar(select(exists().where(Email.id == email_id, visible_condition(viewer)))))


def get_visible(viewer: User, email_id: int) -> Email | None:
    """The email if the viewer may see it; None exactly as if it did not exist."""
    return db.session.scalar(visible_emails(viewer).where(Email.id == email_id))


def audience_labels(email_ids: list[int], record_id: int | None = None) -> dict[int, str]:
    """Who can see each of these (the owner's own) emails, in one query: for the owner's labels.

    "Only you" says why when an Exclude Domain is the cause (only Public heeds them).
    """
    if not email_ids:
        return {}
    mode = _owner_mode()
    rows = db.session.execute(select(
        Email.id, Email.direction, shared_with_others(), mode == SharingMode.CUSTOM,
        _shared_through_record(record_id) if record_id is not None else literal(False),
        _excluding_domains().where(mode == SharingMode.PUBLIC).order_by(ExcludedDomain.domain).limit(1)
        .scalar_subquery(),
    ).where(Email.id.in_(email_ids))).all()
    labels = {}
    for email_id, direction, shared, custom, through_this, excluded_by in rows:
        if not shared:
            labels[email_id] = (EXCLUDED_BY[direction].format(domain_for_people(excluded_by)) if excluded_by
                                else ONLY_YOU)
        elif custom and through_this:
            labels[email_id] = THROUGH_THIS_RECORD
        else:
            labels[email_id] = EVERYONE
    return labels
