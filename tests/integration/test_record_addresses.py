"""A record's addresses (primary and secondary): all matched; a change keeps old links, links new mail."""
from mail.inbound import matching
from models import Contact, Email, EmailLink, MailAccount, db
from tests.mail_factory import make_email, save_record


def linked(record):
    return {e.subject for e in db.session.scalars(
        db.select(Email).join(EmailLink, EmailLink.email_id == Email.id).where(EmailLink.record_id == record.id))}


def test_changing_an_address_keeps_old_links_and_links_mail_already_here_from_the_new_one(rep):
    owner, _ = rep
    db.session.add(MailAccount(user_id=owner.id, name="W", email=owner.email, host="h.example", port=995,
                               security="ssl", username="u", password_encrypted="x", is_default=True))
    db.session.commit()
    mailbox = matching.crm_mailbox_id(owner.id)
    contact = save_record(Contact(), {"last_name": "Bennett", "email": "old@brightwater.example",
                                       "owner_id": owner.id})
    old = make_email(owner, subject="From the old address", sender=("O", "old@brightwater.example"))
    new = make_email(owner, subject="From the new address", sender=("O", "new@brightwater.example"))
    other_box = make_email(owner, subject="New address, other mailbox", sender=("O", "new@brightwater.example"))
    for email in (old, new):
        email.account_id = mailbox
    matching.link_email(old, ["old@brightwater.example"])
    db.session.commit()
    save_record(contact, {"email": "New@Brightwater.example"})
    assert linked(contact) == {"From the old address", "From the new address"}
    assert other_box.id not in {l.email_id for l in db.session.scalars(db.select(EmailLink))}  # not the CRM mailbox


def test_a_secondary_address_is_matched_too(rep):
    owner, client = rep
    response = client.post("/contacts/new", data={"last_name": "Bennett", "email": "olivia@brightwater.example",
                                                  "secondary_email": "O.Bennett@Personal.example", "owner_id": owner.id})
    assert response.status_code == 303
    contact = db.session.scalars(db.select(Contact)).one()
    assert matching.records_for(["o.bennett@personal.example"]) == {contact.id}
    assert matching.records_for(["olivia@brightwater.example"]) == {contact.id}
    assert "o.bennett@personal.example" in client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    client.post(f"/contacts/{contact.id}/edit", data={"last_name": "Bennett", "email": "olivia@brightwater.example",
                                                      "secondary_email": "", "owner_id": owner.id})
    assert matching.records_for(["o.bennett@personal.example"]) == set()
