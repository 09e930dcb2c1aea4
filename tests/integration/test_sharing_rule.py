"""Who may see an email: the rule as a truth table, through the module (predicate and SQL filter).

owner mode x viewer x Share Email x excluded domain x direction = 3 x 4 x 3 x 4 x 2 = 288 cases,
each checked on SQLite and PostgreSQL.
"""
import itertools

import pytest

from crm import users
from mail.reading import addon, sharing
from models import (AddonSettings, Contact, Direction, Email, EmailLink, EmailParticipant, ExcludedDomain, Lead,
                    RecordShare, SendState, SharingMode, db, utcnow)
from tests.conftest import PASSWORD

MODES = [SharingMode.PRIVATE, SharingMode.CUSTOM, SharingMode.PUBLIC]
VIEWERS = ["owner", "other", "admin", "deactivated"]
SHARES = ["on", "off", "other-record"]
EXCLUDED = [None, "sender", "cc", "subdomain"]
DIRECTIONS = [Direction.RECEIVED, Direction.SENT]

OWNER = "owner@northwind.example"
CUSTOMER = "olivia@brightwater.example"
CC = "pat@mail.partner.example"


def participants(direction):
    if direction is Direction.RECEIVED:
        return [("from", CUSTOMER), ("to", OWNER), ("cc", CC)]
    return [("from", OWNER), ("to", CUSTOMER), ("cc", CC)]


def excluded_domain(kind, direction):
    """The domain the owner excludes, for each variant of the table."""
    sender = CUSTOMER if direction is Direction.RECEIVED else OWNER
    return {None: None, "sender": sender.split("@")[1], "cc": "mail.partner.example", "subdomain": "partner.example"}[kind]


def expected(mode, viewer, share, excluded, direction) -> bool:
    """The rule, written out independently of the code under test."""
    if viewer == "deactivated":
        return False
    if viewer == "owner":
        return True
    if mode is SharingMode.PRIVATE:
        return False
    if mode is SharingMode.CUSTOM:
        return share == "on"
    # Public: hidden when a participant other than the owner is at an excluded domain.
    domain = excluded_domain(excluded, direction)
    if domain is None:
        return True
    others = [a for _, a in participants(direction) if a != OWNER]
    return not any(a.split("@")[1] == domain or a.split("@")[1].endswith("." + domain) for a in others)


@pytest.fixture
def world(app):
    owner = users.create_user(OWNER, "Owner", PASSWORD)
    other = users.create_user("other@northwind.example", "Other", PASSWORD)
    admin = users.create_user("ceo@northwind.example", "CEO", PASSWORD, admin=True)
    gone = users.create_user("gone@northwind.example", "Gone", PASSWORD)
    gone.active = False
    lead = Lead(last_name="Bennett", company="Brightwater", email=CUSTOMER, owner_id=owner.id)
    elsewhere = Contact(last_name="Elsewhere", owner_id=owner.id)
    db.session.add_all([lead, elsewhere])
    db.session.commit()
    return {"owner": owner, "other": other, "admin": admin, "deactivated": gone, "lead": lead, "elsewhere": elsewhere}


def make_email(owner, direction, record, subject="Hello"):
    email = Email(owner_id=owner.id, direction=direction, message_id=f"<{subject}-{direction.value}@x>",
                  subject=subject, date=utcnow(), folder="Inbox" if direction is Direction.RECEIVED else "Sent",
                  send_state=SendState.SENT if direction is Direction.SENT else SendState.NONE)
    db.session.add(email)
    db.session.flush()
    for role, address in participants(direction):
        db.session.add(EmailParticipant(email_id=email.id, role=role, address=address, domain=address.split("@")[1]))
    db.session.add(EmailLink(email_id=email.id, record_id=record.id, email_date=email.date))
    db.session.commit()
    return email


def configure(world, mode, share, excluded, direction):
    owner = world["owner"]
    db.session.add(AddonSettings(user_id=owner.id, sharing_mode=mode))
    domain = excluded_domain(excluded, direction)
    if domain and mode is SharingMode.PUBLIC:
        db.session.add(ExcludedDomain(user_id=owner.id, domain=domain))
    if share == "on":
        db.session.add(RecordShare(owner_id=owner.id, record_id=world["lead"].id))
    elif share == "other-record":
        db.session.add(RecordShare(owner_id=owner.id, record_id=world["elsewhere"].id))
    db.session.commit()


CASES = list(itertools.product(MODES, SHARES, EXCLUDED, DIRECTIONS))


@pytest.mark.parametrize("mode,share,excluded,direction", CASES,
                         ids=[f"{m.value}-share_{s}-excl_{e}-{d.value}" for m, s, e, d in CASES])
def test_truth_table(world, mode, share, excluded, direction):
    configure(world, mode, share, excluded, direction)
    email = make_email(world["owner"], direction, world["lead"])
    for viewer in VIEWERS:
        want = expected(mode, viewer, share, excluded, direction)
        user = world[viewer]
        assert sharing.can_see(user, email.id) is want, viewer
        in_query = email.id in db.session.scalars(sharing.visible_emails(user).with_only_columns(Email.id)).all()
        assert in_query is want, viewer
        assert (sharing.get_visible(user, email.id) is not None) is want, viewer
    # The owner's label says the same thing the filter does for others.
    label = sharing.audience_labels([email.id], world["lead"].id)[email.id]
    others_see = expected(mode, "other", share, excluded, direction)
    assert (label != sharing.ONLY_YOU) is others_see
    if others_see and mode is SharingMode.CUSTOM:
        assert label == sharing.THROUGH_THIS_RECORD


def test_a_user_who_never_saved_settings_is_private(world):
    email = make_email(world["owner"], Direction.RECEIVED, world["lead"])
    assert sharing.mode_of(world["owner"].id) is SharingMode.PRIVATE
    assert not sharing.can_see(world["admin"], email.id)


def test_mail_linked_to_no_record_is_never_shared(world):
    db.session.add(AddonSettings(user_id=world["owner"].id, sharing_mode=SharingMode.PUBLIC))
    email = make_email(world["owner"], Direction.RECEIVED, world["lead"])
    db.session.query(EmailLink).delete()
    db.session.commit()
    assert not sharing.can_see(world["other"], email.id)
    assert sharing.can_see(world["owner"], email.id)


def test_an_unsent_draft_stays_with_its_owner(world):
    db.session.add(AddonSettings(user_id=world["owner"].id, sharing_mode=SharingMode.PUBLIC))
    email = make_email(world["owner"], Direction.SENT, world["lead"])
    email.send_state = SendState.DRAFT
    db.session.commit()
    assert not sharing.can_see(world["other"], email.id)


def test_changes_take_effect_on_the_next_read_both_ways(world):
    email = make_email(world["owner"], Direction.RECEIVED, world["lead"])
    other, owner = world["other"], world["owner"]
    assert not sharing.can_see(other, email.id)
    choice = addon.current_choice(owner)
    choice.mode = SharingMode.PUBLIC
    addon.save(owner, choice)
    assert sharing.can_see(other, email.id)
    choice.excluded = ["brightwater.example"]
    addon.save(owner, choice)
    assert not sharing.can_see(other, email.id)
    choice.mode, choice.excluded = SharingMode.CUSTOM, []
    addon.save(owner, choice)
    assert not sharing.can_see(other, email.id)
    addon.set_share(owner, world["lead"].id, "Bennett", True)
    assert sharing.can_see(other, email.id)
    addon.set_share(owner, world["lead"].id, "Bennett", False)
    assert not sharing.can_see(other, email.id)


def test_preview_counts_what_saving_does_and_history_records_it(world):
    owner = world["owner"]
    for i in range(3):
        make_email(owner, Direction.RECEIVED, world["lead"], subject=f"m{i}")
    choice = addon.current_choice(owner)
    choice.mode = SharingMode.PUBLIC
    effect = addon.preview(owner, choice)
    assert (effect.shown, effect.hidden, effect.shown_records) == (3, 0, 1)
    assert not sharing.can_see(world["other"], 1)  # a preview changes nothing
    assert addon.save(owner, choice).shown == 3
    choice.mode = SharingMode.PRIVATE
    assert addon.preview(owner, choice).hidden == 3
    addon.save(owner, choice)
    changes = addon.history(owner)
    assert [c.after for c in changes] == ["Private - Only me", "Public - Complete Sharing"]
    assert "3 emails on 1 record become hidden from others" in changes[0].effect


@pytest.mark.parametrize("text,result", [
    ("Example.COM", ["example.com"]),
    ("a.example, b.example\nc.example", ["a.example", "b.example", "c.example"]),
    ("@corp.example", ["corp.example"]),
])
def test_exclude_domains_are_validated_and_lowercase(text, result):
    assert addon.parse_domains(text) == result


@pytest.mark.parametrize("text,message", [
    ("a.example b.example c.example d.example e.example f.example", "at most 5"),
    ("not a domain!", "is not a domain"),
    ("someone@example.com", "is not a domain"),
    ("localhost", "is not a domain"),
])
def test_bad_exclude_domains_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        addon.parse_domains(text)
