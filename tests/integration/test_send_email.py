"""Send Email and Reply through a real SMTP server (aiosmtpd): identity, sent copy, drafts, limits."""
import email as email_lib
from email import policy

import pytest

from crm import users
from mail.org import org_settings_for_update
from mail.reading import addon, sharing
from mail.outbound import outbox
from models import Contact, Direction, Email, EmailLink, MailAccount, OrgSettings, SendAs, SendState, SharingMode, db
from tests.conftest import PASSWORD
from tests.mail_factory import make_email, save_record


@pytest.fixture
def sender(rep, smtp_server, mail_app):
    """The rep with a CRM mailbox (default POP3 account) and its verified Send Mail As identity."""
    user, client = rep
    login, password = smtp_server.new_user()
    box = mail_app.extensions["mail"].box
    db.session.add(MailAccount(user_id=user.id, name="Work", email="rita@northwind.example", host="127.0.0.1", port=995,
                               security="ssl", username="rita", password_encrypted=box.encrypt("x"), is_default=True))
    identity = SendAs(user_id=user.id, from_name="Rita Rep", from_address="rita@northwind.example",
                      host=smtp_server.host, port=smtp_server.port, security="starttls", username=login,
                      password_encrypted=box.encrypt(password), verified=True)
    contact = Contact(first_name="Olivia", last_name="Bennett", email="olivia@brightwater.example", owner_id=user.id)
    db.session.add_all([identity, contact])
    db.session.commit()
    save_record(contact, {})
    return user, client, contact, identity


def compose(client, contact, **data):
    form = {"to": contact.email, "cc": "", "bcc": "", "subject": "Your quote", "body": "Hello Olivia"}
    form.update(data)
    return client.post(f"/compose/contacts/{contact.id}", data=form, headers={"HX-Request": "true"})


def test_without_a_verified_identity_the_page_says_so_and_links_to_send_mail_as(rep):
    user, client = rep
    contact = Contact(last_name="Bennett", email="olivia@brightwater.example", owner_id=user.id)
    db.session.add(contact)
    db.session.commit()
    page = client.get(f"/compose/contacts/{contact.id}").get_data(as_text=True)
    assert "You cannot send yet." in page and "/settings/mail/accounts/new" in page
    response = compose(client, contact)
    assert response.status_code == 422 and db.session.scalar(db.select(db.func.count()).select_from(Email)) == 0


def test_send_email_from_a_contact_page_delivers_and_files_the_sent_copy(sender, smtp_server):
    user, client, contact, _ = sender
    before = len(smtp_server.messages)
    response = compose(client, contact, cc="Boss <boss@brightwater.example>", bcc="audit@northwind.example")
    assert response.status_code == 200 and response.headers["HX-Redirect"] == f"/contacts/{contact.id}"
    login, mail_from, rcpts, content = smtp_server.messages[before]
    assert mail_from == "rita@northwind.example"
    assert sorted(rcpts) == ["audit@northwind.example", "boss@brightwater.example", "olivia@brightwater.example"]
    assert b"audit@northwind.example" not in content  # Bcc stays off the message
    sent = db.session.scalars(db.select(Email)).one()
    assert (sent.direction, sent.send_state, sent.folder, sent.recipient_count) == (Direction.SENT, SendState.SENT, "Sent", 3)
    assert sent.raw.content.replace(b"\r\n", b"\n") == content.replace(b"\r\n", b"\n")
    assert db.session.get(EmailLink, (sent.id, contact.id)) is not None
    assert "Your quote" in client.get(f"/contacts/{contact.id}").get_data(as_text=True)


def test_reply_sets_in_reply_to_and_references(sender, smtp_server):
    user, client, contact, _ = sender
    original = make_email(user, subject="Question", sender=("Olivia", "olivia@brightwater.example"),
                          to="Rita <rita@northwind.example>", cc="pat@partner.example", record_ids=(contact.id,))
    db.session.commit()
    form_page = client.get(f"/compose/reply/{original.id}?all=1").get_data(as_text=True)
    assert 'value="olivia@brightwater.example"' in form_page and "pat@partner.example" in form_page
    assert "Re: Question" in form_page and "rita@northwind.example" not in form_page.split('name="cc"')[1][:200]
    response = client.post(f"/compose/reply/{original.id}", data={
        "to": "olivia@brightwater.example", "subject": "Re: Question", "body": "Answer",
        "in_reply_to": f"<{original.message_id.strip('<>')}>", "references": ""})
    assert response.status_code == 303
    message = email_lib.message_from_bytes(smtp_server.messages[-1][3], policy=policy.default)
    assert message["In-Reply-To"] == f"<{original.message_id.strip('<>')}>"
    assert original.message_id.strip("<>") in message["References"]


def test_reply_to_a_hidden_email_is_a_404(sender, mail_app):
    other = users.create_user("other@northwind.example", "Other", PASSWORD)
    hidden = make_email(other, subject="Private", record_ids=(sender[2].id,))
    db.session.commit()
    assert sender[1].get(f"/compose/reply/{hidden.id}").status_code == 404
    assert sender[1].post(f"/compose/reply/{hidden.id}", data={"to": "x@y.example"}).status_code == 404


def test_reply_to_a_colleagues_shared_email_is_shared_only_by_my_mode(sender, mail_app):
    user, client, contact, _ = sender
    colleague = users.create_user("pat@northwind.example", "Pat", PASSWORD)
    choice = addon.current_choice(colleague)
    choice.mode = SharingMode.PUBLIC
    addon.save(colleague, choice)
    shared = make_email(colleague, subject="Shared thread", record_ids=(contact.id,))
    db.session.commit()
    assert client.get(f"/compose/reply/{shared.id}").status_code == 200
    client.post(f"/compose/reply/{shared.id}", data={"to": contact.email, "subject": "Re: Shared thread", "body": "x"})
    reply = db.session.scalars(db.select(Email).where(Email.owner_id == user.id)).one()
    assert not sharing.can_see(colleague, reply.id)  # Rita is Private
    choice = addon.current_choice(user)
    choice.mode = SharingMode.PUBLIC
    addon.save(user, choice)
    assert sharing.can_see(colleague, reply.id)


def test_smtp_failure_keeps_an_unsent_draft_with_the_error(sender, smtp_server):
    user, client, contact, identity = sender
    smtp_server.add_user(identity.username, "changed-on-the-server")
    response = compose(client, contact)
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "rejected the username or password" in html and "kept in Drafts" in html
    draft = db.session.scalars(db.select(Email)).one()
    assert (draft.send_state, draft.folder, draft.recipient_count) == (SendState.DRAFT, "Drafts", 0)
    assert "rejected the username or password" in draft.send_error


@pytest.mark.parametrize("field", ["subject", "to"])
def test_a_line_break_in_a_header_field_is_refused(sender, smtp_server, field):
    user, client, contact, _ = sender
    before = len(smtp_server.messages)
    response = compose(client, contact, **{field: "Hi\r\nBcc: victim@example.com"})
    assert response.status_code == 422 and "line break" in response.get_data(as_text=True)
    assert len(smtp_server.messages) == before


def test_sending_limit_counts_every_recipient_and_refuses_before_sending(sender, smtp_server):
    user, client, contact, _ = sender
    org_settings_for_update().daily_send_limit_per_user = 2  # one active... two users (admin + rep): pool of 4
    db.session.commit()
    assert outbox.daily_pool() == 4
    page = client.get(f"/compose/contacts/{contact.id}").get_data(as_text=True)
    assert "4 recipients left" in page
    assert compose(client, contact, cc="a@x.example, b@x.example").status_code == 200  # 3 recipients
    before = len(smtp_server.messages)
    refused = compose(client, contact, cc="c@x.example")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "sending limit for today has 1 recipient left and this message has 2" in html
    assert len(smtp_server.messages) == before
    assert db.session.scalars(db.select(Email).where(Email.send_state == SendState.DRAFT)).one().folder == "Drafts"


def test_more_than_fifty_recipients_are_refused(sender, smtp_server):
    user, client, contact, _ = sender
    many = ", ".join(f"r{i}@x.example" for i in range(51))
    response = compose(client, contact, to=many)
    assert response.status_code == 422 and "at most 50 recipients" in response.get_data(as_text=True)


def test_the_day_runs_midnight_to_midnight_in_the_organisations_time_zone(app):
    from datetime import datetime, timezone
    org_settings_for_update().timezone = "America/New_York"
    db.session.commit()
    start, end = outbox.today_window(datetime(2026, 1, 10, 3, 0, tzinfo=timezone.utc))  # 22:00 on the 9th in New York
    assert start.isoformat() == "2026-01-09T00:00:00-05:00" and (end - start).total_seconds() == 86400


def test_attachments_go_out_and_are_kept_with_the_sent_copy(sender, smtp_server):
    import io
    from models import Attachment
    user, client, contact, _ = sender
    response = client.post(f"/compose/contacts/{contact.id}", data={
        "to": contact.email, "subject": "Quote attached", "body": "See attached.",
        "attachments": [(io.BytesIO(b"%PDF-1.4 quote"), "quote.pdf", "application/pdf")]},
        content_type="multipart/form-data")
    assert response.status_code == 303
    message = email_lib.message_from_bytes(smtp_server.messages[-1][3], policy=policy.default)
    parts = list(message.iter_attachments())
    assert [(p.get_filename(), p.get_content()) for p in parts] == [("quote.pdf", b"%PDF-1.4 quote")]
    sent = db.session.scalars(db.select(Email)).one()
    assert [a.filename for a in db.session.scalars(db.select(Attachment).where(Attachment.email_id == sent.id))] == ["quote.pdf"]


class _WatchingHandler:
    """An SMTP server that looks, from a connection of its own, at what the CRM committed
    by the time the message arrives."""

    def __init__(self, database_url):
        from sqlalchemy import create_engine
        self.engine = create_engine(database_url)
        self.seen = []

    async def handle_DATA(self, server, session, envelope):
        with self.engine.connect() as connection:
            self.seen.extend(connection.execute(db.text(
                "SELECT send_state, folder, recipient_count FROM emails")).all())
        return "250 OK"


@pytest.fixture
def watching_smtp(database_url):
    from aiosmtpd.controller import Controller
    from tests.servers import free_ports
    handler = _WatchingHandler(database_url)
    controller = Controller(handler, hostname="127.0.0.1", port=free_ports(1)[0])
    controller.start()
    yield controller, handler
    controller.stop()
    handler.engine.dispose()


def test_the_message_is_committed_as_sending_before_smtp_then_marked_sent(sender, watching_smtp):
    user, client, contact, identity = sender
    controller, handler = watching_smtp
    identity.port, identity.security, identity.username = controller.port, "none", ""
    db.session.commit()
    assert compose(client, contact, cc="boss@brightwater.example").status_code == 200
    assert handler.seen == [("sending", "Sent", 2)]  # committed, counted against the pool, visible in Sent
    sent = db.session.scalars(db.select(Email)).one()
    assert (sent.send_state, sent.folder, sent.recipient_count) == (SendState.SENT, "Sent", 2)


def test_a_message_whose_sending_was_never_confirmed_stays_visible_and_counted(sender, mail_app):
    """A crash between the commit and the SMTP answer leaves the message in Sent as "sending"."""
    user, client, contact, _ = sender
    org_settings_for_update().daily_send_limit_per_user = 1  # two users: a pool of 2
    db.session.commit()
    make_email(user, subject="Lost in a crash", folder="Sent", direction=Direction.SENT, send_state=SendState.SENDING,
               record_ids=(contact.id,)).recipient_count = 2
    db.session.commit()
    assert outbox.remaining_today() == 0
    page = client.get("/email/?folder=Sent").get_data(as_text=True)
    assert "Lost in a crash" in page and "Sending, not confirmed" in page


def test_two_sends_at_the_same_moment_never_exceed_the_daily_pool(sender, mail_app, smtp_server):
    import threading
    from models import User
    user, client, contact, _ = sender
    user_id = user.id
    org_settings_for_update().daily_send_limit_per_user = 1  # two users: a pool of 2
    db.session.commit()  # and this thread holds no transaction while the senders race
    senders, barrier, outcomes = 6, threading.Barrier(6), []
    before = len(smtp_server.messages)

    def send(n):
        with mail_app.app_context():
            barrier.wait()
            try:
                outbox.send(mail_app.extensions["mail"], db.session.get(User, user_id),
                            outbox.Outgoing(to=[f"r{n}@x.example"], subject=f"race {n}"))
                outcomes.append("sent")
            except outbox.SendError as e:
                outcomes.append(str(e))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes.count("sent") == 2, outcomes
    assert len(smtp_server.messages) - before == 2
    assert all("sending limit" in o for o in outcomes if o != "sent")
    counted = db.session.scalar(db.select(db.func.sum(Email.recipient_count)))
    assert counted == 2


def test_the_reply_quote_gives_the_time_in_the_organisations_zone(sender):
    user, client, contact, _ = sender
    db.session.get(OrgSettings, 1).timezone = "Asia/Tokyo"  # UTC+9
    original = make_email(user, subject="Quote", sender=("Olivia", contact.email), record_ids=(contact.id,))
    db.session.commit()  # the factory's mail is dated 3 Mar 2025 09:30 UTC
    page = client.get(f"/compose/reply/{original.id}").get_data(as_text=True)
    assert "3 Mar 2025 18:30, Olivia wrote:" in page and "09:30" not in page


def test_a_reply_sent_from_the_crm_joins_its_conversation_and_is_read_there(sender, smtp_server):
    user, client, contact, _ = sender
    original = make_email(user, subject="Order 4711", sender=("Olivia", contact.email),
                          to="Rita <rita@northwind.example>", record_ids=(contact.id,))
    db.session.commit()
    reader = f"/contacts/{contact.id}/emails/{original.conversation_id}"
    form = client.get(f"/compose/reply/{original.id}?back={reader}").get_data(as_text=True)
    assert f'name="in_reply_to" type="text" value="&lt;{original.message_id}&gt;"' in form or original.message_id in form
    response = client.post(f"/compose/reply/{original.id}?back={reader}", data={
        "to": contact.email, "subject": "Re: Order 4711", "body": "It ships on Monday.",
        "in_reply_to": f"<{original.message_id}>", "references": ""})
    assert response.status_code == 303 and response.location.endswith(reader)
    sent = db.session.scalars(db.select(Email).where(Email.direction == Direction.SENT)).one()
    assert sent.conversation_id == original.conversation_id
    page = client.get(reader).get_data(as_text=True)
    assert page.count('class="conversation-message"') == 2 and "It ships on Monday." in page
    listed = client.get(f"/contacts/{contact.id}/emails", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert listed.count('<li class="email-row') == 1 and 'title="2 messages"' in listed
