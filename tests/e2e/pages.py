"""Shared by the page-wide browser tests: a live server with the demo data, every page of the app
as a signed-in user sees it, and the checks run on each (fits the width, axe-core, focus ring)."""
from __future__ import annotations

import re
from pathlib import Path

from datetime import timedelta

import pytest
from flask import url_for

from crm.demo import DEMO_PASSWORD, DEMO_USERS
from crm.users import find_user as users_find
from mail.reading import sharing
from models import AccountState, Contact, Email, Lead, MailAccount, SendAs, SharingMode, User, db, utcnow

AXE_JS = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
# The narrowest and widest usual phones: checked for fit and reachable actions only (axe ran at 390).
PHONE_WIDTHS = {"phone-360": {"width": 360, "height": 800}, "phone-430": {"width": 430, "height": 932}}
# The help page's slips, should a page say them: possessives without apostrophe, "1 emails".
WRONG_WORDS = re.compile(r"\bothers\s+e-?mails?\b|\bcustomers\s+e-?mails?\b|\b1\s+(e-?mails|recipients|messages)\b",
                         re.IGNORECASE)
ADMIN, REP, REP2 = (u[0] for u in DEMO_USERS)
# Not pages: downloads, raw bytes, the sandboxed body (checked inside the reading page), fragments.
NOT_PAGES = {"static", "email.attachment_download", "email.email_raw", "email.email_body",
             "mail_settings.account_health", "related.related_list", "auth.setup_admin"}


def load_demo_world(app) -> None:
    """The demo data plus a POP3 account and a Send Mail As address for each user, as a real
    organisation has them: one checked a minute ago, one never checked, one refused (the servers
    are never contacted: the poller is off)."""
    from blueprints.cli import load_demo
    from crm import users

    with app.app_context():
        load_demo()
        box = app.extensions["mail"].box
        checked = [utcnow() - timedelta(minutes=1), None, utcnow() - timedelta(hours=2)]
        states = [AccountState.READY, AccountState.READY, AccountState.AUTH_ERROR]
        for n, user in enumerate(users.find_user(email) for email, _, _ in DEMO_USERS):
            # The demo gives each user a CRM mailbox and a Send Mail As (its mail sink): take those.
            account = db.session.scalar(db.select(MailAccount).where(MailAccount.user_id == user.id)) or MailAccount(
                user_id=user.id, name="Work", email=user.email, host="pop.northwind.example", port=995,
                security="ssl", username=user.email.split("@")[0], password_encrypted=box.encrypt("x"),
                is_default=True)
            account.state, account.last_checked_at, account.last_poll_at = states[n], checked[n], checked[n]
            account.last_error = "The server refused the password." if n == 2 else ""
            identity = db.session.scalar(db.select(SendAs).where(SendAs.user_id == user.id)) or SendAs(
                user_id=user.id, from_name=user.name, from_address=user.email, host="smtp.northwind.example",
                port=587, security="starttls", username=user.email, password_encrypted=box.encrypt("x"))
            identity.verified = n != 1
            db.session.add_all([account, identity])
        db.session.commit()


def _ids(app, who: str) -> dict:
    """Values for URL arguments: the first of each thing the signed-in user may open."""
    with app.app_context():
        user = users_find(who)
        email = db.session.scalar(sharing.visible_emails(user).order_by(Email.id).limit(1))
        account = db.session.scalar(db.select(MailAccount).where(MailAccount.user_id == user.id))
        identity = db.session.scalar(db.select(SendAs).where(SendAs.user_id == user.id))
        other = db.session.scalar(db.select(User).where(User.id != user.id).order_by(User.id.desc()))
        lead = db.session.scalar(db.select(Lead).order_by(Lead.id))
        contact = db.session.scalar(db.select(Contact).order_by(Contact.id))
        return {"email_id": email.id, "account_id": account.id, "identity_id": identity.id,
                "user_id": other.id, "record_id": {"leads": lead.id, "contacts": contact.id},
                "custom": sharing.mode_of(user.id) is SharingMode.CUSTOM}


def page_paths(app, who: str) -> list[str]:
    """Every GET page of the app with its arguments filled in, for the user `who`."""
    ids = _ids(app, who)
    paths = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES or (who != ADMIN and rule.endpoint.startswith("setup.")):
            continue
        if rule.endpoint == "related.email_share_effect" and not ids["custom"]:
            continue  # Share Email is Custom sharing's; to others it answers 409 (test_record_pages)
        kinds = ["leads", "contacts"] if "kind" in rule.arguments else [None]
        for kind in kinds:
            values = {}
            for arg in rule.arguments:
                if arg == "kind":
                    values[arg] = kind
                elif arg == "record_id":
                    values[arg] = ids["record_id"][kind]
                elif ids.get(arg) is not None:
                    values[arg] = ids[arg]
            if set(values) != set(rule.arguments):
                continue  # an argument this module does not know: another test covers that page
            with app.test_request_context():
                paths.add(url_for(rule.endpoint, **values))
    return sorted(paths)


def sign_in(page, base: str, who: str) -> None:
    page.goto(base + "/signin")
    page.locator("#email").fill(who)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("main button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/(leads/)?$"))


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def unreachable(page) -> list[str]:
    """Links, buttons and fields drawn beyond the screen's right edge with no box of their own
    to scroll them into view: actions a phone user cannot reach."""
    return page.evaluate("""() => {
        const beyond = el => {  // the right edge the user sees: clipped by hidden-overflow boxes
            let right = el.getBoundingClientRect().right;
            for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
                const o = getComputedStyle(p).overflowX, box = p.getBoundingClientRect();
                if (o === 'auto' || o === 'scroll') return box.right > innerWidth + 1;  // scrolled in its own box
                if (o !== 'visible') right = Math.min(right, box.right);
            }
            return right > innerWidth + 1;
        };
        return [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')]
            .filter(el => el.getClientRects().length && beyond(el))
            .map(el => (el.textContent.trim() || el.name || el.id || el.tagName).slice(0, 40));
    }""")


def wrong_words(page) -> list[str]:
    """The help page's slips in what the page says."""
    return [m.group(0) for m in WRONG_WORDS.finditer(page.inner_text("body"))]


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page as it is now, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    found = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => v.id + ': ' + v.help + ' -> ' +
            v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
    }""")
    return found


def focus_outline(page) -> str | None:
    """The focused element's outline as drawn (at least 2 px), None when nothing shows."""
    return page.evaluate("""() => {
        const el = document.activeElement;
        if (!el || el === document.body) return null;
        const s = getComputedStyle(el);
        return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 ? s.outline : null;
    }""")


# Fixtures for the test modules that import them: one live server and one browser context per size.
@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """One live server with the demo organisation for every test of the module."""
    from tests.conftest import _live_server

    app, server = _live_server(tmp_path_factory.mktemp("pages"))
    load_demo_world(app)
    with server:
        yield server


@pytest.fixture(scope="module", params=list(SIZES))
def context(request, browser):
    """One browser context per screen size, reused by the tests of that size."""
    # axe is injected as a script tag: the test browser alone may bypass our CSP for it.
    ctx = browser.new_context(viewport=SIZES[request.param], bypass_csp=True)
    ctx.set_default_timeout(8000)
    yield ctx
    ctx.close()


@pytest.fixture
def tab(context):
    page = context.new_page()
    yield page
    context.clear_cookies()
    page.close()
