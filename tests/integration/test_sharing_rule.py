"""Who may see an email: the rule as a truth table, through the module (predicate and SQL filter).

owner mode x Share Email x Exclude Domain x direction = 3 x 3 x 6 x 2 = 108 cases, each asked for
4 viewers (432 checks) with the SQL filter, the predicate and the owner's label, on SQLite and
PostgreSQL. Exclude Domains rows are present in every mode: Private and Custom must ignore them.
The test mail is stored the way a fetch stores it (tests.mail_factory).
"""
import itertools

import pytest

from crm import users
from mail.reading import addon, conversations, sharing
from models import (AddonSettings, Contact, Direction, Email, EmailLink, ExcludedDomain, Lead, RecordShare,
                    SendState, SharingMode, db)
from tests import mail_factory
from tests.conftest import PASSWORD

MODES = [SharingMode.PRIVATE, SharingMode.CUSTOM, SharingMode.PUBLIC]
VIEWERS = ["owner", "other", "admin", "deactivated"]
SHARES = ["on", "off", "other-record"]
DIRECTIONS = [Direction.RECEIVED, Direction.SENT]

OWNER = "owner@northwind.example"
CUSTOMER = "olivia@eu.brightwater.example"
CC = "pat@mail.partner.example"
# The domain the owner excludes in each variant: the customer's own, its parent (a domain covers
# its subdomains), the owner's own company, and the Cc's parent (Cc alone never makes mail private).
EXCLUDED = {None: None, "customer": "eu.brightwater.example", "customer-parent": "brightwater.example",
            "own": "northwind.example", "cc": "partner.example", "elsewhere": "elsewhere.example"}


def participants(direction):
    if direction is Direction.RECEIVED:
        return [("from", CUSTOMER), ("to", OWNER), ("cc", CC)]
    return [("from", OWNER), ("to", CUSTOMER), ("cc", CC)]


def covered(address, domain):
    at = address.split("@")[1]
    return at == domain or at.endswith("." + domain)


def excluded_by(excluded, direction):
    """The help page's rule, written out: received mail by its sender, sent mail by its To."""
    domain = EXCLUDED[excluded]
    decisive = "from" if direction is Direction.RECEIVED else "to"
    hit = domain is not None and any(covered(a, domain) for role, a in participants(direction) if role == decisive)
    return domain if hit else None


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
    return excluded_by(excluded, direction) is None


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


def make_email(owner, direction, record, subject="Hello", **message):
    """One email of `owner`'s, as a fetch (or the CRM's Sent copy) stores it, linked to `record`."""
    (_, sender), (_, to), (_, cc) = participants(direction)
    return mail_factory.make_email(owner, subject=subject, sender=("", sender), to=to, cc=cc, direction=direction,
                                   folder="Inbox" if direction is Direction.RECEIVED else "Sent",
                                   record_ids=(record.id,), **message)


def configure(world, mode, share, excluded, direction):
    owner = world["owner"]
    db.session.add(AddonSettings(user_id=owner.id, sharing_mode=mode))
    if EXCLUDED[excluded]:  # in every mode: only Public may heed it
        db.session.add(ExcludedDomain(user_id=owner.id, domain=EXCLUDED[excluded]))
    if share == "on":
        db.session.add(RecordShare(owner_id=owner.id, record_id=world["lead"].id))
    elif share == "other-record":
        db.session.add(RecordShare(owner_id=owner.id, record_id=world["elsewhere"].id))
    db.session.commit()


CASES = list(itertools.product(MODES, SHARES, list(EXCLUDED), DIRECTIONS))


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
    assert (not label.startswith(sharing.ONLY_YOU)) is others_see
    if others_see and mode is SharingMode.CUSTOM:
        assert label == sharing.THROUGH_THIS_RECORD
    domain = excluded_by(excluded, direction)
    if mode is SharingMode.PUBLIC and domain:
        way = "from" if direction is Direction.RECEIVED else "to"
        assert label == f"Only you: {way} an excluded domain, {domain}"
    elif not others_see:
        assert label == sharing.ONLY_YOU


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
    ("corp.example.", ["corp.example"]),
    ("Bücher.Example", ["xn--bcher-kva.example"]),
    ("XN--BCHER-KVA.example, bücher.example.", ["xn--bcher-kva.example"]),
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


def _public_excluding(owner, text):
    choice = addon.current_choice(owner)
    choice.mode, choice.excluded = SharingMode.PUBLIC, addon.parse_domains(text)
    addon.save(owner, choice)


@pytest.mark.parametrize("setting,sender", [
    ("bücher.example", "olivia@xn--bcher-kva.example"),
    ("XN--BCHER-KVA.Example.", "olivia@bücher.example"),
    ("bücher.example", "olivia@Sales.BÜCHER.example"),
    ("acme.example.", "olivia@ACME.example"),
])
def test_a_domain_is_one_domain_whatever_its_spelling(world, setting, sender):
    owner, lead = world["owner"], world["lead"]
    raw = mail_factory.build_message(sender=("Olivia", "olivia@placeholder.example"), to=OWNER)
    raw = raw.replace(b"olivia@placeholder.example", sender.encode())  # an SMTPUTF8 header, as received
    email = mail_factory.store_eml(owner, raw, record_ids=(lead.id,))
    _public_excluding(owner, "elsewhere.example")
    assert sharing.can_see(world["other"], email.id)
    _public_excluding(owner, setting)
    assert not sharing.can_see(world["other"], email.id)
    assert sharing.audience_labels([email.id])[email.id].startswith("Only you: from an excluded domain, ")


def test_the_owner_label_names_the_domain_as_written_for_people(world):
    owner, lead = world["owner"], world["lead"]
    raw = mail_factory.build_message(sender=("Olivia", "olivia@placeholder.example"), to=OWNER)
    email = mail_factory.store_eml(owner, raw.replace(b"placeholder.example", "bücher.example".encode()),
                                   record_ids=(lead.id,))
    _public_excluding(owner, "xn--bcher-kva.example")
    assert sharing.audience_labels([email.id])[email.id] == "Only you: from an excluded domain, bücher.example"


@pytest.fixture
def colleague(world):
    """A Public colleague whose mail with the lead everyone sees."""
    colleague = users.create_user("public@northwind.example", "Public Colleague", PASSWORD)
    db.session.add(AddonSettings(user_id=colleague.id, sharing_mode=SharingMode.PUBLIC))
    db.session.commit()
    return colleague


@pytest.mark.parametrize("mode,share,excluded,direction", CASES,
                         ids=[f"{m.value}-share_{s}-excl_{e}-{d.value}" for m, s, e, d in CASES])
def test_truth_table_over_conversations(world, colleague, mode, share, excluded, direction):
    """A conversation shows each viewer the messages they may see, counts and previews only those,
    and one with none visible does not exist for them."""
    configure(world, mode, share, excluded, direction)
    opening = mail_factory.make_email(colleague, subject="Order 4711", sender=("Olivia", CUSTOMER),
                                      to=colleague.email, message_id="<order-4711@brightwater.example>",
                                      text="Where is order 4711?", record_ids=(world["lead"].id,))
    answer = make_email(world["owner"], direction, world["lead"], subject="Re: Order 4711", minutes=5,
                        in_reply_to="<order-4711@brightwater.example>", text="Secret discount inside.")
    alone = make_email(world["owner"], direction, world["lead"], subject="Private matter", minutes=10,
                       text="Nobody else reads this.")
    lead = world["lead"]
    assert answer.conversation_id == opening.conversation_id != alone.conversation_id
    for viewer in VIEWERS:
        want, user = expected(mode, viewer, share, excluded, direction), world[viewer]
        shown = [m.email.id for m in conversations.conversation(user, opening.conversation_id, record_id=lead.id)]
        alone_shown = [m.email.id for m in conversations.conversation(user, alone.conversation_id, record_id=lead.id)]
        if viewer == "deactivated":
            assert shown == [] and alone_shown == []
            continue
        assert shown == ([opening.id, answer.id] if want else [opening.id]), viewer
        assert alone_shown == ([alone.id] if want else []), viewer
        rows = {row.id: row for row in conversations.related_conversations(user, lead.id).items}
        order = rows[opening.conversation_id]
        assert (order.count, order.latest.id) == ((2, answer.id) if want else (1, opening.id)), viewer
        assert (alone.conversation_id in rows) is want, viewer
        assert ("Secret discount" in order.latest.snippet) is want, viewer
        assert conversations.record_mail(user, [lead.id])[lead.id].emails == (3 if want else 1), viewer
