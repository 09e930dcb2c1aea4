"""Issue 13.1 with files: the blank-send question keeps the files the sender chose (htmx swaps the
form but keeps its file input), so confirming sends them; the aiosmtpd server receives them."""
from __future__ import annotations

import email
import email.policy

import pytest
from playwright.sync_api import Page, expect

from models import Lead, MailAccount, SendAs, User, db
from tests.conftest import sign_in
from tests.mail_factory import save_record

pytestmark = pytest.mark.e2e


@pytest.fixture
def lead_url(mail_live_server, smtp_server):
    """Priya can send (a CRM mailbox and a verified Send Mail As on the test SMTP server) to a lead."""
    app = mail_live_server.app
    login, password = smtp_server.new_user()
    with app.app_context():
        box = app.extensions["mail"].box
        priya = db.session.scalar(db.select(User).where(User.email == "priya@northwind.example"))
        db.session.add(MailAccount(user_id=priya.id, name="Work", email=priya.email, host="127.0.0.1", port=995,
                                   security="ssl", username="nobody", is_default=True, password_encrypted=box.encrypt("x"),
                                   state="error", next_poll_at=None, poll_interval_s=86400))
        db.session.add(SendAs(user_id=priya.id, from_name="Priya Nair", from_address=priya.email, host=smtp_server.host,
                              port=smtp_server.port, security="starttls", username=login,
                              password_encrypted=box.encrypt(password), verified=True))
        lead = save_record(Lead(), {"first_name": "Olivia", "last_name": "Bennett", "company": "Brightwater",
                                    "email": "olivia@brightwater.example", "owner_id": priya.id})
        return f"{mail_live_server.url}/compose/leads/{lead.id}"


def test_confirming_a_blank_subject_sends_the_chosen_attachment(page: Page, mail_live_server, smtp_server, lead_url,
                                                                  tmp_path):
    quote = tmp_path / "quote.pdf"
    quote.write_bytes(b"%PDF-1.4 the quote for 40 pallets")
    sign_in(page, mail_live_server, mail_live_server.rep2)
    page.goto(lead_url)
    page.get_by_label("Message").fill("The quote is attached.")
    page.get_by_label("Attachments").set_input_files(str(quote))
    before = len(smtp_server.messages)
    page.get_by_role("button", name="Send", exact=True).click()
    question = page.locator(".confirm-blank")
    expect(question).to_contain_text("Send without a subject?")
    expect(question).to_contain_text("quote.pdf")  # it says the file is kept, by name
    question.get_by_role("button", name="Send without a subject").click()
    expect(page.get_by_role("status").first).to_contain_text("Sent")
    assert len(smtp_server.messages) == before + 1
    sent = email.message_from_bytes(smtp_server.messages[-1][3], policy=email.policy.default)
    files = {part.get_filename(): part.get_content() for part in sent.iter_attachments()}
    assert files == {"quote.pdf": b"%PDF-1.4 the quote for 40 pallets"}
