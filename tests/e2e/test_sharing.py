"""In Chromium, with mail fetched from the test Dovecot: two sales reps and the CEO share (or not)."""
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from mail.org import org_settings_for_update
from tests.mail_factory import save_record
from models import Lead, MailAccount, SendAs, User, db, utcnow
from tests.conftest import sign_in

pytestmark = pytest.mark.e2e


def message(subject, cc="", sender="Olivia Bennett <olivia@brightwater.example>"):
    cc_line = f"Cc: {cc}\r\n" if cc else ""
    return (f"From: {sender}\r\nTo: Daniel <daniel@northwind.example>\r\n{cc_line}"
            f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}@brightwater.example>\r\n"
            f"Date: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nHello Daniel,\r\n\r\n{subject}.\r\n").encode()


@pytest.fixture
def setting(mail_live_server, dovecot, smtp_server):
    """Daniel's POP3 mailbox (two mails from a lead waiting), Priya's verified Send Mail As, the lead."""
    app = mail_live_server.app
    login, password = dovecot.new_user("daniel")
    dovecot.deliver(login, message("Quote for 40 pallets"))
    dovecot.deliver(login, message("Contract with our partner", sender="Pat <pat@mail.partner.example>",
                                           cc="olivia@brightwater.example"))
    smtp_login, smtp_password = smtp_server.new_user()
    with app.app_context():
        box = app.extensions["mail"].box
        daniel = db.session.scalar(db.select(User).where(User.email == "daniel@northwind.example"))
        priya = db.session.scalar(db.select(User).where(User.email == "priya@northwind.example"))
        db.session.add(MailAccount(user_id=daniel.id, name="Work", email="daniel@northwind.example", host=dovecot.host,
                                   port=dovecot.ssl_port, security="ssl", username=login,
                                   password_encrypted=box.encrypt(password), is_default=True,
                                   # not due: only Fetch now polls it, so its health line reads that poll
                                   next_poll_at=utcnow() + timedelta(days=1)))
        db.session.add(MailAccount(user_id=priya.id, name="Work", email="priya@northwind.example", host=dovecot.host,
                                   port=dovecot.ssl_port, security="ssl", username="nobody", is_default=True,
                                   password_encrypted=box.encrypt("x"), state="error", next_poll_at=None,
                                   poll_interval_s=86400))
        db.session.add(SendAs(user_id=priya.id, from_name="Priya Nair", from_address="priya@northwind.example",
                              host=smtp_server.host, port=smtp_server.port, security="starttls", username=smtp_login,
                              password_encrypted=box.encrypt(smtp_password), verified=True))
        lead = save_record(Lead(), {"first_name": "Olivia", "last_name": "Bennett", "company": "Brightwater",
                                     "email": "olivia@brightwater.example", "owner_id": daniel.id})
        lead_id = lead.id
    return {"lead_url": f"{mail_live_server.url}/leads/{lead_id}"}


def test_two_reps_and_the_ceo(browser: Browser, page: Page, mail_live_server, setting):
    server = mail_live_server
    sign_in(page, server, server.rep)  # Daniel
    page.goto(server.url + "/settings/mail/accounts")
    page.locator("tr", has_text="daniel@northwind.example").get_by_role("button", name="Fetch now").click()
    health = page.locator(".account-health").first
    expect(health).to_contain_text("fetched 2", timeout=20000)

    # Private by default: only Daniel sees the mail on the lead.
    page.goto(setting["lead_url"])
    expect(page.locator("#emails")).to_contain_text("Quote for 40 pallets")
    expect(page.locator("#emails")).to_contain_text("Your email is private")

    priya_context = browser.new_context()
    priya = priya_context.new_page()
    priya.set_default_timeout(5000)
    sign_in(priya, server, server.rep2)
    priya.goto(setting["lead_url"])
    expect(priya.locator("#emails")).not_to_contain_text("Quote for 40 pallets")

    # Custom: the mode's explanation swaps in place; then Share Email on the lead.
    page.goto(server.url + "/settings/mail/addon/")
    page.get_by_label("Custom - Record-level Sharing").check()
    expect(page.locator("#mode-explanation")).to_contain_text("Share Emails from the selected leads and contacts")
    expect(page.locator("#addon-effect")).to_contain_text("No email changes who can see it.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("Mail Add-on settings saved.")
    page.goto(setting["lead_url"])
    share = page.get_by_label("Share Email")
    page.get_by_role("link", name="What would ticking change?").click()  # asked, not computed with the page
    expect(page.locator(".share-email")).to_contain_text("Ticking it: 2 emails on 1 record become visible to others.")
    share = page.get_by_label("Share Email")
    share.check()
    expect(page.locator("#emails")).to_contain_text("Everyone: shared through this record")
    priya.reload()
    expect(priya.locator("#emails")).to_contain_text("Quote for 40 pallets")
    page.get_by_label("Share Email").uncheck()
    expect(page.locator("#emails")).to_contain_text("Only you")
    priya.reload()
    expect(priya.locator("#emails")).not_to_contain_text("Quote for 40 pallets")

    # Public, with the partner's domain excluded: the mail received from the partner stays private.
    page.goto(server.url + "/settings/mail/addon/")
    page.get_by_label("Public - Complete Sharing").check()
    page.get_by_label("Exclude Domains").fill("partner.example")
    page.get_by_role("button", name="What would change?").click()
    expect(page.locator("#addon-effect")).to_contain_text("1 email on 1 record becomes visible to others.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text("Mail Add-on settings saved.")
    priya.reload()
    expect(priya.locator("#emails")).to_contain_text("Quote for 40 pallets")
    expect(priya.locator("#emails")).not_to_contain_text("Contract with our partner")

    # Priya (Private) replies to Daniel's shared mail: Daniel sees her reply only once she shares.
    priya.get_by_role("link", name="Quote for 40 pallets").click()
    priya.get_by_role("button", name="Reply", exact=True).click()
    priya.get_by_label("Message").fill("Happy to help, Olivia.")
    priya.get_by_role("button", name="Send").click()
    expect(priya.locator("#emails")).to_contain_text("Re: Quote for 40 pallets")
    page.goto(setting["lead_url"])
    expect(page.locator("#emails")).not_to_contain_text("Re: Quote for 40 pallets")
    priya.goto(server.url + "/settings/mail/addon/")
    priya.get_by_label("Public - Complete Sharing").check()
    priya.get_by_role("button", name="Save").click()
    expect(priya.get_by_role("status").first).to_contain_text("Mail Add-on settings saved.")
    page.reload()
    expect(page.locator("#emails")).to_contain_text("Re: Quote for 40 pallets")

    # The CEO sees what is shared, and nothing more.
    ceo_context = browser.new_context()
    ceo = ceo_context.new_page()
    ceo.set_default_timeout(5000)
    sign_in(ceo, server, server.admin)
    ceo.goto(setting["lead_url"])
    expect(ceo.locator("#emails")).to_contain_text("Quote for 40 pallets")
    expect(ceo.locator("#emails")).not_to_contain_text("Contract with our partner")

    # The sending limit: the administrator lowers it; Priya's next message is refused and kept.
    with server.app.app_context():
        org_settings_for_update().daily_send_limit_per_user = 1  # three users: a pool of 3, one already used
        db.session.commit()
    priya.goto(setting["lead_url"])
    priya.get_by_role("button", name="Send Email").click()
    expect(priya.locator(".remaining")).to_contain_text("2 recipients left")
    priya.get_by_label("Cc", exact=True).fill("a@brightwater.example, b@brightwater.example")
    priya.get_by_label("Subject").fill("Too many")
    priya.get_by_label("Message").fill("Three recipients, two left.")
    priya.get_by_role("button", name="Send").click()
    expect(priya.get_by_role("alert")).to_contain_text("sending limit for today has 2 recipients left")
    expect(priya.get_by_role("alert")).to_contain_text("kept in Drafts")
    page.screenshot(path="test-artifacts/sharing-daniel.png", full_page=True)
    priya.screenshot(path="test-artifacts/sharing-priya.png", full_page=True)
    priya_context.close()
    ceo_context.close()
