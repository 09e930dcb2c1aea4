"""A colleague's record edit never widens someone's sharing (issue 9.3), through HTTP.

Attack 1: a Lead given a CRM user's own address would make all of that user's mail customer mail.
Attack 2: a secondary address added to a record on which a Custom colleague ticked Share Email
shares that colleague's mail with it, and nothing told them.
"""
import pytest

from crm import users
from mail.inbound import matching
from mail.reading import addon
from models import EmailLink, Lead, MailAccount, Record, RecordAddress, SendAs, SharingChange, SharingMode, db
from tests.conftest import PASSWORD
from tests.mail_factory import make_email, save_record

CUSTOMER = "olivia@brightwater.example"
PERSONAL = "olivia.b@personal.example"


@pytest.fixture
def office(mail_app):
    """Daniel (whose mail is at stake, with his CRM mailbox), Priya (a colleague) and the CEO."""
    people = {}
    for key, email, admin in [("daniel", "daniel@northwind.example", False), ("priya", "priya@northwind.example", False),
                              ("ceo", "margaret@northwind.example", True)]:
        user = users.create_user(email, key.title(), PASSWORD, admin=admin)
        client = mail_app.test_client()
        client.post("/signin", data={"email": email, "password": PASSWORD})
        people[key] = (user, client)
    daniel = people["daniel"][0]
    mailbox = MailAccount(user_id=daniel.id, name="Work", email="d.smith@mail.northwind.example", host="h.example",
                          port=995, security="ssl", username="d", password_encrypted="x", is_default=True)
    identity = SendAs(user_id=daniel.id, from_name="Daniel", from_address="sales@northwind.example", host="h.example",
                      port=587, security="starttls", username="d", password_encrypted="x", verified=True)
    db.session.add_all([mailbox, identity])
    db.session.commit()
    people["mailbox"] = mailbox
    return people


def set_mode(user, mode):
    choice = addon.current_choice(user)
    choice.mode = mode
    addon.save(user, choice)


def daniels_mail(office, sender, subject, to=None):
    daniel = office["daniel"][0]
    email = make_email(daniel, subject=subject, sender=("", sender), to=to or daniel.email)
    email.account_id = office["mailbox"].id  # fetched by his CRM mailbox: CRM mail
    db.session.commit()
    return email


def form(owner, **fields):
    return {"last_name": "Bennett", "company": "Brightwater", "owner_id": owner.id, **fields}


def ceo_sees(office, subject):
    return subject in office["ceo"][1].get("/email/?q=" + subject.split()[0]).get_data(as_text=True) or any(
        subject in office["ceo"][1].get(f"/leads/{lead.id}").get_data(as_text=True)
        for lead in db.session.scalars(db.select(Lead)))


@pytest.mark.parametrize("address,why", [
    ("Daniel@Northwind.example", "the sign-in address of Daniel"),
    ("d.smith@mail.northwind.example", "the address of a POP3 account of Daniel"),
    ("sales@northwind.example", "a Send Mail As address of Daniel"),
])
@pytest.mark.parametrize("field", ["email", "secondary_email"])
def test_a_record_cannot_be_given_a_crm_users_address(office, address, why, field):
    daniel, priya_client = office["daniel"][0], office["priya"][1]
    set_mode(daniel, SharingMode.PUBLIC)
    daniels_mail(office, "olivia@brightwater.example", "Private salary talk", to=address.lower())
    response = priya_client.post("/leads/new", data=form(office["priya"][0], **{field: address}),
                                 headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in body and why in body and "never a customer address" in body
    assert db.session.scalars(db.select(Record)).all() == []
    assert db.session.scalars(db.select(EmailLink)).all() == []


def test_a_deactivated_users_address_is_refused_too(office):
    gone = users.create_user("left@northwind.example", "Leah", PASSWORD)
    gone.active = False
    db.session.commit()
    response = office["priya"][1].post("/leads/new", data=form(office["priya"][0], email="left@northwind.example"))
    assert response.status_code == 422 and "the sign-in address of Leah" in response.get_data(as_text=True)


def test_an_address_a_record_already_holds_links_nothing_once_it_is_a_users(office):
    """A record that holds a user's address (from before this rule, or a user added later) is inert."""
    daniel = office["daniel"][0]
    set_mode(daniel, SharingMode.PUBLIC)
    lead = save_record(Lead(), form(daniel, email=CUSTOMER))
    db.session.add(RecordAddress(record_id=lead.id, address=daniel.email, is_primary=False))
    db.session.commit()
    assert matching.records_for([daniel.email, "sales@northwind.example"]) == set()
    email = daniels_mail(office, "hr@payroll.example", "Payslip March")
    assert matching.link_existing(lead.id, [daniel.email]) == []
    assert matching.link_email(email, [daniel.email, "hr@payroll.example"]) == 0
    db.session.commit()
    assert not ceo_sees(office, "Payslip March")


def test_a_colleague_adding_an_address_to_a_shared_record_is_recorded_and_noticed(office):
    daniel, daniel_client = office["daniel"]
    priya, priya_client = office["priya"]
    set_mode(daniel, SharingMode.CUSTOM)
    lead = save_record(Lead(), form(daniel, first_name="Olivia", email=CUSTOMER))
    addon.set_share(daniel, lead.id, lead.full_name, True)
    for i in range(3):
        daniels_mail(office, PERSONAL, f"Weekend plans {i}")
    response = priya_client.post(f"/leads/{lead.id}/edit", data=form(daniel, first_name="Olivia", email=CUSTOMER,
                                                                     secondary_email=PERSONAL))
    assert response.status_code == 303
    [change] = db.session.scalars(db.select(SharingChange).where(SharingChange.by_user_id == priya.id)).all()
    assert change.user_id == daniel.id and change.record_id == lead.id
    assert "Priya" in change.what and PERSONAL in change.effect and "3 emails" in change.effect
    history = daniel_client.get("/settings/mail/addon/history").get_data(as_text=True)
    assert PERSONAL in history and "Priya" in history
    record_url = f"/leads/{lead.id}"
    NOTICE = f"3 emails of yours with {PERSONAL} became visible to others"
    for page in ("/email/", "/settings/mail/addon/"):
        body = daniel_client.get(page).get_data(as_text=True)
        assert f'href="{record_url}"' in body and NOTICE in body, page
    assert NOTICE not in priya_client.get("/email/").get_data(as_text=True)  # the notice is Daniel's
    # Seen and dismissed: gone from both pages, kept in the history.
    notice = daniel_client.post(f"/settings/mail/addon/notices/{change.id}/dismiss", data={"back": "email"})
    assert notice.status_code == 303 and notice.location.endswith("/email/")
    assert NOTICE not in daniel_client.get("/email/").get_data(as_text=True)
    assert PERSONAL in daniel_client.get("/settings/mail/addon/history").get_data(as_text=True)


def test_a_colleague_creating_a_record_for_a_public_owners_customer_is_recorded(office):
    daniel, priya = office["daniel"][0], office["priya"][0]
    set_mode(daniel, SharingMode.PUBLIC)
    daniels_mail(office, CUSTOMER, "Quote for 40 pallets")
    assert office["priya"][1].post("/leads/new", data=form(priya, email=CUSTOMER)).status_code == 303
    [change] = db.session.scalars(db.select(SharingChange).where(SharingChange.user_id == daniel.id,
                                                                 SharingChange.by_user_id == priya.id)).all()
    assert "1 email" in change.effect and CUSTOMER in change.effect


@pytest.mark.parametrize("mode", [SharingMode.PRIVATE, SharingMode.CUSTOM])
def test_nothing_is_recorded_when_no_mail_becomes_visible(office, mode):
    daniel, priya = office["daniel"][0], office["priya"][0]
    set_mode(daniel, mode)  # Custom, but Share Email not ticked on the new record
    daniels_mail(office, CUSTOMER, "Quote for 40 pallets")
    assert office["priya"][1].post("/leads/new", data=form(priya, email=CUSTOMER)).status_code == 303
    assert db.session.scalars(db.select(SharingChange).where(SharingChange.by_user_id.is_not(None))).all() == []


def test_the_owners_own_edit_is_no_notice(office):
    daniel, daniel_client = office["daniel"]
    set_mode(daniel, SharingMode.PUBLIC)
    daniels_mail(office, CUSTOMER, "Quote for 40 pallets")
    assert daniel_client.post("/leads/new", data=form(daniel, email=CUSTOMER)).status_code == 303
    assert db.session.scalars(db.select(SharingChange).where(SharingChange.by_user_id.is_not(None))).all() == []


def test_converting_a_lead_that_holds_a_users_address_does_not_give_it_to_the_contact(office):
    daniel, priya = office["daniel"][0], office["priya"][0]
    set_mode(daniel, SharingMode.PUBLIC)
    lead = Lead(last_name="Bennett", company="Brightwater", email=daniel.email, owner_id=priya.id)  # from before
    db.session.add(lead)
    db.session.flush()
    db.session.add(RecordAddress(record_id=lead.id, address=daniel.email, is_primary=True))
    daniels_mail(office, "hr@payroll.example", "Payslip March")
    response = office["priya"][1].post(f"/leads/{lead.id}/convert")
    assert response.status_code == 303
    contact = db.session.get(Record, lead.converted_contact_id)
    assert db.session.scalars(db.select(RecordAddress.address).where(RecordAddress.record_id == contact.id)).all() == []
    assert not ceo_sees(office, "Payslip March")


def test_the_migration_stops_records_linking_through_users_addresses(app):
    """Records from before the rule: their users' addresses go, with the links made only through them."""
    from alembic.script import ScriptDirectory
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config(
        app.extensions["migrate"].directory))
    db.session.commit()
    downgrade(revision=script.get_revision("hsh2_users_addresses").down_revision)
    now = "2025-03-03 09:30:00"
    for statement in [
        "INSERT INTO users (id, email, name, password_hash, role, active, created_at) VALUES "
        f"(1, 'daniel@northwind.example', 'Daniel', 'x', 'standard', true, '{now}')",
        "INSERT INTO records (id, kind, first_name, last_name, company, email, phone, owner_id, created_at, updated_at) "
        f"VALUES (1, 'lead', '', 'Bennett', '', 'daniel@northwind.example', '', 1, '{now}', '{now}')",
        "INSERT INTO record_addresses (id, record_id, address, is_primary) VALUES "
        "(1, 1, 'daniel@northwind.example', true), (2, 1, 'olivia@brightwater.example', false)",
        "INSERT INTO emails (id, owner_id, direction, send_state, send_error, folder, label, message_id, in_reply_to, "
        "\"references\", subject, from_name, from_address, to_text, cc_text, bcc_text, reply_to_text, date, received_at,"
        " snippet, text_body, size, has_attachments, recipient_count, is_read, parse_notes, created_at) VALUES "
        + ", ".join(f"({i}, 1, 'received', 'none', '', 'Inbox', '', 'm{i}', '', '', 's{i}', '', '', '', '', '', '', "
                    f"'{now}', '{now}', '', '', 0, false, 0, false, '', '{now}')" for i in (1, 2)),
        "INSERT INTO email_participants (id, email_id, role, address, domain) VALUES "
        "(1, 1, 'to', 'daniel@northwind.example', 'northwind.example'), "
        "(2, 2, 'to', 'daniel@northwind.example', 'northwind.example'), "
        "(3, 2, 'from', 'olivia@brightwater.example', 'brightwater.example')",
        f"INSERT INTO email_links (email_id, record_id, email_date) VALUES (1, 1, '{now}'), (2, 1, '{now}')",
    ]:
        db.session.execute(text(statement))
    db.session.commit()
    upgrade()
    assert db.session.execute(text("SELECT address FROM record_addresses")).scalars().all() == [
        "olivia@brightwater.example"]
    # Email 1 was linked only through Daniel's address; email 2 involves the customer too.
    assert db.session.execute(text("SELECT email_id FROM email_links")).scalars().all() == [2]
