"""Conversations: grouped when mail is stored (mail.inbound.threads), over constructed threads and
the real-world corpus, and the migration that groups the mail stored before them."""
from __future__ import annotations

import importlib.util
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from crm import users
from mail.inbound import store, threads
from mail.inbound.parsing import parse
from models import Conversation, ConversationKey, Email, db
from tests.conftest import PASSWORD
from tests.mail_factory import BASE_DATE, CORPUS, build_message, make_email, store_eml

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "hrd1_conversations.py"
CUSTOMER = ("Olivia Bennett", "olivia@brightwater.example")


@pytest.fixture
def owner(app):
    user = users.create_user("rita@northwind.example", "Rita", PASSWORD)
    db.session.commit()
    return user


def mail(owner, msgid, *, refs="", reply_to="", subject="Order 4711", days=0, sender=CUSTOMER, to="rita@northwind.example"):
    return make_email(owner, subject=subject, message_id=msgid, in_reply_to=reply_to, references=refs,
                      minutes=int(days * 24 * 60), sender=sender, to=to, text=f"{msgid} {subject}")


def test_a_reply_chain_is_one_conversation(owner):
    a = mail(owner, "<a@x.example>")
    b = mail(owner, "<b@x.example>", reply_to="<a@x.example>", subject="Re: Order 4711", days=1)
    c = mail(owner, "<c@x.example>", refs="<a@x.example> <b@x.example>", subject="RE: AW: Order 4711", days=2)
    other = mail(owner, "<d@x.example>", subject="Something else")
    assert a.conversation_id == b.conversation_id == c.conversation_id != other.conversation_id


def test_a_reply_stored_before_its_original_still_joins_it(owner):
    c = mail(owner, "<c@x.example>", refs="<a@x.example> <b@x.example>", subject="Re: Totally renamed", days=2)
    a = mail(owner, "<a@x.example>", subject="First", days=0)
    b = mail(owner, "<b@x.example>", reply_to="<a@x.example>", subject="Re: First", days=1)
    assert a.conversation_id == b.conversation_id == c.conversation_id


def test_a_message_naming_two_conversations_makes_them_one(owner):
    x = mail(owner, "<x@x.example>", subject="Quote")
    y = mail(owner, "<y@x.example>", subject="Delivery", sender=("Lucas", "lucas@moreau.example"))
    assert x.conversation_id != y.conversation_id
    z = mail(owner, "<z@x.example>", refs="<x@x.example> <y@x.example>", subject="Re: Quote and delivery", days=1)
    db.session.expire_all()
    ids = {db.session.get(Email, e.id).conversation_id for e in (x, y, z)}
    assert len(ids) == 1
    assert set(db.session.scalars(select(ConversationKey.conversation_id))) == ids


def test_broken_references_still_group_what_they_name(owner):
    # The original was never fetched (deleted, or in another mailbox): its replies still meet.
    b = mail(owner, "<b@x.example>", reply_to="<lost@x.example>", refs="<lost@x.example>", subject="Re: Lost")
    c = mail(owner, "<c@x.example>", refs="<lost@x.example> <garbage", subject="Re: Lost", days=1,
             sender=("Pat", "pat@partner.example"))
    assert b.conversation_id == c.conversation_id


@pytest.mark.parametrize("days,sender,subject,together", [
    (3, CUSTOMER, "Re: Order 4711", True),
    (29, CUSTOMER, "Fwd: order   4711", True),
    (40, CUSTOMER, "Re: Order 4711", False),  # past the window
    (3, ("Lucas", "lucas@moreau.example"), "Re: Order 4711", False),  # other people
    (3, CUSTOMER, "Re: Order 4712", False),
])
def test_mail_without_threading_headers_groups_by_subject_and_people(owner, days, sender, subject, together):
    first = mail(owner, "", subject="Order 4711")
    second = mail(owner, "", subject=subject, days=days, sender=sender)
    assert (first.conversation_id == second.conversation_id) is together


def test_mail_without_a_subject_is_never_grouped_by_it(owner):
    first, second = mail(owner, "", subject=""), mail(owner, "", subject="", days=1)
    assert first.conversation_id != second.conversation_id


def test_one_batch_groups_its_own_threads_in_a_fixed_number_of_statements(owner):
    from sqlalchemy import event
    def incoming(n, **kw):
        raw = build_message(subject=kw["subject"], date=BASE_DATE + timedelta(hours=n),
                            message_id=f"<m{n}@x.example>", in_reply_to=kw.get("reply", ""), text=f"n{n}")
        return store.Incoming(raw, parse(raw, BASE_DATE), len(raw))
    counts = []
    for size in (3, 30):
        subject = f"Batch of {size}"  # each batch a thread of its own
        batch = [incoming(size * 10, subject=subject)] + [
            incoming(size * 10 + i, subject="Re: " + subject, reply=f"<m{size * 10}@x.example>") for i in range(1, size)]
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            stored = store.store_many(owner.id, None, batch, crm_mailbox_id=None, settings=None)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        conversation_ids = set(db.session.scalars(select(Email.conversation_id).where(
            Email.id.in_([s.email_id for s in stored]))))
        assert len(conversation_ids) == 1
        # What grouping adds to a batch (the store's own inserts are counted by its own tests).
        counts.append(len([s for s in statements if re.search(r"(INTO|FROM|UPDATE) conversation", s)]))
    assert counts[0] == counts[1]


def partition(emails) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for email_id, conversation_id in emails:
        groups.setdefault(conversation_id, set()).add(email_id)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("order", ["forward", "reversed"])
def test_the_corpus_groups_by_its_message_ids_whatever_the_order_it_arrives_in(owner, order):
    """389 real messages: shared Message-IDs, References to mail never seen, 93 without a
    Message-ID. Each gets a conversation; the grouping is the same whichever order they come in,
    and the same as the migration's grouping of mail already stored."""
    files = sorted(CORPUS.glob("*.eml"))
    if order == "reversed":
        files.reverse()
    for path in files:
        store_eml(owner, path.read_bytes())
    db.session.commit()
    rows = db.session.execute(select(Email.id, Email.conversation_id, Email.message_id, Email.in_reply_to,
                                     Email.references)).all()
    assert all(r.conversation_id is not None for r in rows)
    by_id: dict[str, set[int]] = {}
    for r in rows:
        for name in {r.message_id, r.in_reply_to, *r.references.split()} - {""}:
            by_id.setdefault(name, set()).add(r.conversation_id)
    assert all(len(c) == 1 for c in by_id.values())  # messages naming one Message-ID: one conversation
    shared = {r.message_id for r in rows if len([s for s in rows if s.message_id == r.message_id]) > 1}
    assert len(shared) >= 5  # the corpus's test fixtures reuse Message-IDs: they are real cases
    stored = partition((r.id, r.conversation_id) for r in rows)
    # The migration's grouping of the same mail, already stored, is the same.
    db.session.execute(update(Email).values(conversation_id=None))
    db.session.execute(delete(ConversationKey))
    db.session.execute(delete(Conversation))
    spec = importlib.util.spec_from_file_location("hrd1", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migration._group_existing_mail(db.session.connection())
    migrated = partition(db.session.execute(select(Email.id, Email.conversation_id)).tuples())
    assert migrated == stored
    assert len(stored) < len(rows)


def test_new_mail_joins_the_conversations_the_migration_made(owner):
    a = mail(owner, "<a@x.example>")
    db.session.execute(update(Email).values(conversation_id=None))
    db.session.execute(delete(ConversationKey))
    db.session.execute(delete(Conversation))
    spec = importlib.util.spec_from_file_location("hrd1", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migration._group_existing_mail(db.session.connection())
    db.session.expire_all()
    b = mail(owner, "<b@x.example>", reply_to="<a@x.example>", days=1)
    c = mail(owner, "<c@x.example>", subject="New thread", days=2)
    assert db.session.get(Email, a.id).conversation_id == b.conversation_id != c.conversation_id


@pytest.mark.parametrize("text,preview", [
    ("Thanks, it ships Monday.\n\nOn 3 May 2026, Olivia wrote:\n> Where is it?\n> Olivia", "Thanks, it ships Monday."),
    ("Thanks.\n-- \nDaniel Ortiz\nNorthwind, +1 555 0100", "Thanks."),
    ("Noted.\n\n-----Original Message-----\nFrom: Olivia\nSubject: Order", "Noted."),
    ("> Where is it?\n\nIt left yesterday.", "It left yesterday."),
    ("Am 3. Mai 2026 um 10:00 schrieb Hannah:\n> Hallo", "Am 3. Mai 2026 um 10:00 schrieb Hannah: > Hallo"),
])
def test_previews_leave_out_quoted_text_and_signatures(owner, text, preview):
    email = make_email(owner, text=text)
    assert email.snippet == preview


def test_normalised_subjects():
    assert threads.normalise_subject("Re: AW: [Sales]  Fwd:  Order   4711 ") == "order 4711"
    assert threads.normalise_subject("RE[2]: Order 4711") == "order 4711"
    assert threads.fallback_key("Order", ["A@x.example", "b@y.example"]) == threads.fallback_key(
        "re: order", ["b@y.example", "a@x.example"])


def test_one_batch_groups_mail_without_threading_headers_by_subject_and_people(owner):
    def incoming(n, subject):
        raw = build_message(subject=subject, date=BASE_DATE + timedelta(days=n), message_id="", text=f"n{n}")
        return store.Incoming(raw, parse(raw, BASE_DATE), len(raw))
    batch = [incoming(0, "Price list"), incoming(1, "Re: Price list"), incoming(2, "Other"), incoming(45, "Price list")]
    stored = store.store_many(owner.id, None, batch, crm_mailbox_id=None, settings=None)
    ids = [db.session.get(Email, s.email_id).conversation_id for s in stored]
    assert ids[0] == ids[1] and len({ids[0], ids[2], ids[3]}) == 3
