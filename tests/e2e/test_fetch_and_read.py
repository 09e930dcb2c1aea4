"""In Chromium: Fetch now from the test Dovecot, watch the progress, open a fetched HTML mail and see
that the script in it did not run."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from models import MailAccount, User, db, utcnow
from tests.conftest import sign_in

pytestmark = pytest.mark.e2e
BULK = 2000  # enough that a poll takes seconds, so its progress can be watched
HOSTILE = (b"From: Olivia Bennett <olivia@brightwater.example>\r\nTo: Daniel <daniel@northwind.example>\r\n"
           b"Subject: Quarterly numbers\r\nMessage-ID: <q1@brightwater.example>\r\nMIME-Version: 1.0\r\n"
           b"Date: Tue, 3 Mar 2026 10:00:00 +0000\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           b"<h2>Quarterly numbers</h2><p>The figures are in.</p>"
           b"<script>window.pwned = 1; parent.document.title = 'PWNED';</script>"
           b"<img src=x onerror=\"window.pwned = 2\">\r\n")


def test_fetch_now_shows_progress_and_fetched_html_mail_runs_nothing(page: Page, mail_live_server, dovecot):
    login, password = dovecot.new_user("bulk")
    for n in range(BULK):
        dovecot.deliver(login, f"From: a{n}@customer.example\r\nTo: daniel@northwind.example\r\nSubject: Note {n}\r\n"
                               f"Message-ID: <n{n}@customer.example>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n"
                               f"\r\nNote number {n}.\r\n".encode())
    dovecot.deliver(login, HOSTILE)
    app = mail_live_server.app
    with app.app_context():
        daniel = db.session.scalar(db.select(User).where(User.email == "daniel@northwind.example"))
        db.session.add(MailAccount(user_id=daniel.id, name="Work", email="daniel@northwind.example",
                                   host=dovecot.host, port=dovecot.ssl_port, security="ssl", username=login,
                                   password_encrypted=app.extensions["mail"].box.encrypt(password),
                                   is_default=True, poll_interval_s=86400,
                                       # not due: only Fetch now polls it (a due account is polled by the
                                       # background poller too, and its second poll then reads "fetched 0")
                                       next_poll_at=utcnow() + timedelta(days=1)))
        db.session.commit()
    sign_in(page, mail_live_server, mail_live_server.rep)
    page.goto(mail_live_server.url + "/settings/mail/accounts")
    page.get_by_role("button", name="Fetch now").click()
    health = page.locator(".account-health")
    expect(health.get_by_role("status")).to_have_text(re.compile(r"Fetched [\d,]+ of 2,001"), timeout=20000)
    expect(health).to_contain_text("fetched 2001", timeout=60000)

    page.get_by_role("link", name="Email", exact=True).click()
    page.wait_for_load_state()  # htmx is deferred: typing before it wires the box sends nothing
    with page.expect_response(lambda r: "q=quarterly" in r.url):
        page.get_by_role("searchbox").fill("quarterly")
    page.get_by_role("link", name="Quarterly numbers").click()
    frame = page.locator("iframe.email-body").element_handle().content_frame()
    frame.wait_for_load_state()
    expect(frame.locator("h2")).to_have_text("Quarterly numbers")
    expect(frame.locator("script")).to_have_count(0)
    page.wait_for_timeout(200)
    assert frame.evaluate("() => window.pwned") is None
    assert page.evaluate("() => window.pwned") is None and "PWNED" not in page.title()
