"""In headless Chromium: a hostile HTML mail opened in the Email tab runs nothing of its own."""
from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from crm import users
from mail.htmlsafe import SafeHtml
from mail.org import set_mail_addon_enabled
from mail.reading import bodies
from models import Direction, db
from tests.mail_factory import make_email

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
SHOTS = Path("/tmp/email-shots")
HOSTILE_HTML = """
<h2 style="color: #1f2a44">Quarterly numbers</h2>
<p>Hi Rita,</p><p>the figures for the quarter are in the chart below; the full report is attached.</p>
<script>window.pwned = "script"; parent.document.title = "PWNED";</script>
<p><img src="cid:chart@brightwater" alt="chart" width="240" height="80"></p>
<img src="x" onerror="window.pwned = 'onerror'; top.document.title = 'PWNED'">
<p><a href="https://brightwater.example/report">Read the full report online</a></p>
<img src="https://tracker.example/open.png" width="1" height="1">
<p>Best regards,<br>Olivia</p>
"""


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain-colour PNG, made here so the test needs no image file."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture
def mailbox(live_server):
    """A rep with a realistic Inbox and one hostile HTML mail; returns that mail's id."""
    with live_server.app.app_context():
        set_mail_addon_enabled(True)
        user = users.create_user("rita@northwind.example", "Rita Rep", PASSWORD)
        people = [("Kenji Watanabe", "kenji@sakura.example", "Order 1042: delivery moved to Friday"),
                  ("Amara Okafor", "amara@lagosbank.example", "Re: Loan terms for the new warehouse"),
                  ("Lena Schmidt", "lena@berlin-tools.example", "Invitation: product demo next Tuesday"),
                  ("Carlos Ruiz", "carlos@andes.example", "Price list 2025 (updated)")]
        for n, (name, address, subject) in enumerate(people):
            make_email(user, subject=subject, sender=(name, address), minutes=n * 90, is_read=n % 2 == 0,
                       label="Customers" if n == 1 else "",
                       text=f"Hello Rita, a short note about {subject.lower()}. Talk soon, {name.split()[0]}.")
        make_email(user, subject="Thanks for the call", folder="Sent", direction=Direction.SENT,
                   sender=("Rita Rep", "rita@northwind.example"), to="Kenji Watanabe <kenji@sakura.example>")
        hostile = make_email(user, subject="Quarterly numbers", minutes=600, html=HOSTILE_HTML,
                             sender=("Olivia Bennett", "olivia@brightwater.example"),
                             text="The figures for the quarter.",
                             inline_images=(("chart@brightwater", "image/png", png(240, 80, (59, 91, 219))),),
                             attachments=(("Q1 figures.pdf", "application/pdf", b"%PDF-1.4 figures"),))
        db.session.commit()
        return hostile.id


def sign_in(page: Page, url: str) -> None:
    page.goto(url + "/signin")
    page.get_by_label("Email").fill("rita@northwind.example")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Leads")).to_be_visible()


def open_body_frame(page: Page):
    frame = page.locator("iframe.email-body").element_handle().content_frame()
    frame.wait_for_load_state()
    expect(frame.locator("h2")).to_have_text("Quarterly numbers")
    return frame


def test_script_in_an_html_mail_does_not_run_and_images_wait_for_the_reader(page: Page, live_server, mailbox):
    SHOTS.mkdir(exist_ok=True)
    remote_requests = []
    page.route("**/tracker.example/**", lambda route: (remote_requests.append(route.request.url),
                                                       route.fulfill(status=204)))
    sign_in(page, live_server.url)
    page.get_by_role("link", name="Email", exact=True).click()
    expect(page.locator(".mail-side")).to_contain_text("Inbox")
    expect(page.locator("#email-list tr.unread")).to_have_count(3)
    page.screenshot(path=str(SHOTS / "inbox.png"), full_page=True)

    with page.expect_response(lambda r: "q=quarterly" in r.url):
        page.get_by_role("searchbox").fill("quarterly")
    expect(page.locator("#email-list tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=quarterly"))
    page.get_by_role("link", name="Quarterly numbers").click()
    expect(page.get_by_role("heading", name="Quarterly numbers", level=2)).to_be_visible()

    frame = open_body_frame(page)
    assert frame.evaluate("() => window.pwned") is None
    assert page.title() == "Quarterly numbers · Email · CRM Mail Add-on"
    assert page.evaluate("() => window.pwned") is None
    assert frame.locator("img[alt=chart]").evaluate("img => img.naturalWidth") == 240  # cid: image shown
    expect(page.locator(".images-blocked")).to_contain_text("1 remote image blocked")
    assert remote_requests == []
    page.screenshot(path=str(SHOTS / "read.png"), full_page=True)

    page.get_by_role("link", name="Show images").click()
    expect(page.locator(".images-blocked")).to_have_count(0)
    frame = open_body_frame(page)
    expect(frame.locator('img[src^="https://tracker.example/"]')).to_have_count(1)
    page.wait_for_timeout(200)
    assert remote_requests == ["https://tracker.example/open.png"]
    assert frame.evaluate("() => window.pwned") is None and page.title().startswith("Quarterly numbers")

    page.locator("[data-reader-close]").click()  # the reading pane's Close (Back on narrow screens)
    expect(page).to_have_url(re.compile(r"/email/\?q=quarterly$"))
    expect(page.locator("#email-list tbody tr")).to_have_count(1)
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Inbox").click()
    expect(page.locator("#email-list tbody tr")).to_have_count(5)
    page.screenshot(path=str(SHOTS / "inbox-narrow.png"), full_page=True)


def test_even_an_unsanitised_script_cannot_run_in_the_sandboxed_frame(page: Page, live_server, mailbox,
                                                                        monkeypatch):
    # Defence in depth: should the sanitiser ever let a script through, the iframe's sandbox (no
    # allow-scripts) and the body's CSP (default-src 'none') still stop it.
    monkeypatch.setattr(bodies, "sanitise", lambda html, **kwargs: SafeHtml(html, 0))
    sign_in(page, live_server.url)
    page.goto(f"{live_server.url}/email/{mailbox}")
    frame = open_body_frame(page)
    expect(frame.locator("script")).to_have_count(1)  # it is there this time...
    page.wait_for_timeout(200)
    assert frame.evaluate("() => window.pwned") is None  # ...and did not run
    assert page.title() == "Quarterly numbers · Email · CRM Mail Add-on"
