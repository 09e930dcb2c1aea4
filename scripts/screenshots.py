"""Screenshots of the main pages with the demo data, for the README and for looking at changes.

Run: .venv/bin/python scripts/screenshots.py [OUTDIR]   (default docs/screenshots)
Each page is taken at a laptop's width (OUTDIR/NAME.png) and at a phone's (OUTDIR/phone/NAME.png).
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from app import create_app  # noqa: E402
from blueprints.cli import load_demo  # noqa: E402
from crm.demo import DEMO_PASSWORD, DEMO_USERS  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
PAGES = [
    ("leads", "/leads/"),
    ("lead-detail", "/leads/1"),
    ("lead-new-errors", "/leads/new"),
    ("contacts-search", "/contacts/?q=crescent"),
    ("setup", "/setup/"),
    ("setup-users", "/setup/users"),
    ("setup-mail-addon", "/setup/addons/mail"),
    ("settings", "/settings/"),
    ("email", "/email/"),
]
# Seen by Daniel, a sales rep whose mail is Public (his own company's domain excluded).
REP_PAGES = [
    ("rep-lead-emails", "/leads/1"),
    ("rep-email", "/email/"),
    ("rep-email-conversation", "/email/"),
    ("rep-email-conversation-narrow", "/email/"),
    ("rep-email-read", "/email/{rep_email_id}"),  # one of the rep's own: another's is a 404
    ("rep-mail-addon", "/settings/mail/addon/"),
    ("rep-mail-accounts", "/settings/mail/accounts"),
    ("rep-add-pop3-account", "/settings/mail/accounts/new"),
    ("rep-send-mail-as", "/settings/mail/send-as/"),
    ("rep-compose", "/compose/leads/1"),
]
SIZES = {"": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


def sign_in(page, email: str) -> None:
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("main button[type=submit]")


def shoot(page, base: str, outdir: str, ids: dict) -> None:
    page.goto(base + "/signin")
    page.screenshot(path=f"{outdir}/signin.png")
    sign_in(page, DEMO_USERS[0][0])
    for name, path in PAGES:
        page.goto(base + path)
        if name == "lead-new-errors":
            page.fill("#email", "not an address")
            page.click("#record-form button[type=submit]")
            page.wait_for_selector(".field-error")
        page.screenshot(path=f"{outdir}/{name}.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, DEMO_USERS[1][0])
    for name, path in REP_PAGES:
        page.goto(base + path.format(**ids))
        if name == "rep-lead-emails":  # a conversation read at its row
            page.locator("a.conversation-toggle").first.click()
            page.wait_for_selector("[data-reader]")
        if name.startswith("rep-email-conversation"):  # the reading pane beside the list, or instead of it
            page.locator("#email-list a[id^=conversation-row-]").first.click()
            page.wait_for_selector("[data-reader]")
        page.screenshot(path=f"{outdir}/{name}.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()
    page.close()


def main(outdir: str) -> None:
    from flask_migrate import upgrade

    os.makedirs(outdir, exist_ok=True)
    instance = tempfile.mkdtemp(prefix="crm-shots-")
    app = create_app({"INSTANCE_PATH": instance, "MAIL_ALLOW_LOCAL_SERVERS": True, "MAIL_SECRET_KEY": "shots"})
    with app.app_context():
        upgrade()
        load_demo()
        from crm.users import find_user
        from models import Email, db
        rep = find_user(DEMO_USERS[1][0])
        ids = {"rep_email_id": db.session.scalar(db.select(Email.id).where(Email.owner_id == rep.id).order_by(Email.id))}
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for folder, viewport in SIZES.items():
            os.makedirs(os.path.join(outdir, folder), exist_ok=True)
            shoot(browser.new_page(viewport=viewport), base, os.path.join(outdir, folder), ids)
        browser.close()
    server.shutdown()
    print(f"Screenshots in {outdir}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
