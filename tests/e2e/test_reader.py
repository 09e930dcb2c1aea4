"""In headless Chromium, on the demo data: the in-place reader keeps its place (focus on open,
Esc and Close give it back to the row, Back and Reload keep the reader, the Email tab's pane and
its narrow-screen Back), and the demo's Reply really delivers to the demo's mail sink."""
from __future__ import annotations

import importlib.util
import re
import socket
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from blueprints.cli import load_demo
from crm.demo import DEMO_PASSWORD
from models import Email, Lead, db

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DANIEL = ("daniel.ortiz@northwind.example", DEMO_PASSWORD)


def _sink_module():
    spec = importlib.util.spec_from_file_location("mail_sink", ROOT / "scripts" / "mail_sink.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sink(tmp_path):
    controller, handler = _sink_module().start("127.0.0.1", _free_port(), tmp_path / "sink")
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def demo(live_server, sink, monkeypatch):
    """The demo loaded as `flask demo` loads it, its identities pointing at this test's sink."""
    monkeypatch.setenv("DEMO_MAIL_SINK_PORT", str(sink.port))
    with live_server.app.app_context():
        load_demo()
        olivia = db.session.scalar(db.select(Lead).where(Lead.email == "olivia.bennett@brightwater.example"))
        live_server.lead_id = olivia.id
    return live_server


def sign_in(page: Page, server, who):
    page.goto(server.url + "/signin")
    page.locator("#email").fill(who[0])
    page.locator("#password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile("/signin"))


def test_the_reader_opens_at_its_row_and_keeps_its_place(demo, page: Page):
    sign_in(page, demo, DANIEL)
    lead_url = f"{demo.url}/leads/{demo.lead_id}"
    page.goto(lead_url)
    rows = page.locator("a.conversation-toggle")
    first, second = rows.nth(0), rows.nth(1)
    first_id, second_id = first.get_attribute("id"), second.get_attribute("id")
    cid = first_id.rsplit("-", 1)[1]
    first.click()
    expect(page).to_have_url(f"{lead_url}/emails/{cid}")
    reader = page.locator(f"#conversation-{cid}")
    expect(reader).to_be_visible()
    expect(page.locator(f"#{first_id}")).to_have_attribute("aria-expanded", "true")
    expect(page.locator(f"#{first_id}")).to_have_attribute("aria-current", "true")
    expect(page.locator(f"#conversation-title-{cid}")).to_be_focused()
    assert reader.get_attribute("aria-live") is None and page.locator("[aria-live] [data-reader]").count() == 0
    assert reader.locator("details[open]").count() == 1  # the latest message expanded
    assert page.evaluate(f"document.getElementById('conversation-{cid}').getBoundingClientRect().top") < 200
    # Reload: the same page, reader open, focus on its heading.
    page.reload()
    expect(page.locator(f"#conversation-{cid}")).to_be_visible()
    expect(page.locator(f"#conversation-title-{cid}")).to_be_focused()
    # Esc folds it and gives the focus back to its row.
    page.keyboard.press("Escape")
    expect(page.locator("[data-reader]")).to_have_count(0)
    expect(page).to_have_url(f"{lead_url}/emails")
    expect(page.locator(f"#{first_id}")).to_be_focused()
    expect(page.locator(f"#{first_id}")).to_have_attribute("aria-expanded", "false")
    # Open one, then another; Back returns to the first with its reader, Back again to none.
    page.locator(f"#{first_id}").click()
    expect(page.locator(f"#conversation-{cid}")).to_be_visible()
    page.locator(f"#{second_id}").click()
    other = second_id.rsplit("-", 1)[1]
    expect(page.locator(f"#conversation-{other}")).to_be_visible()
    expect(page.locator(f"#conversation-{cid}")).to_have_count(0)
    page.go_back()
    expect(page).to_have_url(f"{lead_url}/emails/{cid}")
    expect(page.locator(f"#conversation-{cid}")).to_be_visible()
    # Close (the button) does what Esc does.
    page.locator(f"#conversation-{cid} [data-reader-close]").click()
    expect(page.locator("[data-reader]")).to_have_count(0)
    expect(page.locator(f"#{first_id}")).to_be_focused()


def test_the_email_tab_reads_beside_the_list_or_instead_of_it(demo, page: Page):
    sign_in(page, demo, DANIEL)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(demo.url + "/email/?customer=1")
    row = page.locator("#email-list a[id^=conversation-row-]").first
    cid = row.get_attribute("id").rsplit("-", 1)[1]
    row.click()
    expect(page).to_have_url(f"{demo.url}/email/conversations/{cid}?customer=1")
    expect(page.locator("#email-list")).to_be_visible()  # wide: the pane beside the list
    expect(page.locator(f"#conversation-{cid}")).to_be_visible()
    expect(page.locator(f"#conversation-title-{cid}")).to_be_focused()
    expect(page.locator(f"#conversation-{cid} details[open] .filed-under a").first).to_be_visible()
    page.set_viewport_size({"width": 600, "height": 900})  # narrow: the reader instead of the list
    expect(page.locator("#email-list")).to_be_hidden()
    back = page.locator(f"#conversation-{cid} [data-reader-close]")
    expect(back).to_contain_text("Back to Inbox")
    page.reload()
    expect(page.locator(f"#conversation-{cid}")).to_be_visible()
    back.click()
    expect(page).to_have_url(f"{demo.url}/email/?customer=1")
    expect(page.locator("#email-list")).to_be_visible()
    expect(page.locator(f"#conversation-row-{cid}")).to_be_focused()


def test_the_demos_reply_is_delivered_to_the_sink_and_joins_its_conversation(demo, sink, page: Page):
    sign_in(page, demo, DANIEL)
    lead_url = f"{demo.url}/leads/{demo.lead_id}"
    page.goto(lead_url)
    row = page.locator("a.conversation-toggle").first
    cid = row.get_attribute("id").rsplit("-", 1)[1]
    row.click()
    reader = page.locator(f"#conversation-{cid}")
    expect(reader).to_be_visible()
    count = reader.locator("li.conversation-message").count()
    reader.locator("details[open]").get_by_role("button", name="Reply", exact=True).click()
    page.locator("#body").fill("Thanks Olivia, confirmed from the demo.")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(f"{lead_url}/emails/{cid}")
    expect(page.locator(f"#conversation-{cid} li.conversation-message")).to_have_count(count + 1)
    expect(page.locator(f"#conversation-{cid} details[open]")).to_contain_text("confirmed from the demo")
    assert len(sink.received) == 1
    sender, recipients, content = sink.received[0]
    assert sender == DANIEL[0] and recipients == ["olivia.bennett@brightwater.example"]
    assert b"In-Reply-To: <demo-" in content and b"confirmed from the demo" in content
    assert (Path(sink.folder) / "received.log").read_text().count("Mail sink received") == 1
    with demo.app.app_context():
        sent = db.session.scalars(db.select(Email).where(Email.subject.like("Re:%"), Email.owner_id != None)  # noqa: E711
                                  .order_by(Email.id.desc())).first()
        assert str(sent.conversation_id) == cid
