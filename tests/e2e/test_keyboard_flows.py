"""Issue 13.11 from the keyboard alone: a refused sign-in lets the password be typed again at once,
and the whole flow (sign in, add a POP3 account, Test Account, choose a sharing mode, tick Share
Email, read, reply) works with Tab, Enter, Space and typing, a visible focus ring on every stop."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def test_a_refused_sign_in_focuses_the_empty_password_field(page: Page, mail_live_server):
    email, password = mail_live_server.rep
    page.goto(mail_live_server.url + "/signin")
    page.keyboard.type(email)  # the address field has the focus on arrival
    page.keyboard.press("Tab")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_focused()
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_label("Email")).to_have_value(email)
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


# What the focused element is called and whether its focus shows (an outline of 2 px or more, or
# a focus shadow), read in the page.
FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return {name: '', ring: false, tag: 'BODY'};
    const s = getComputedStyle(el);
    const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none';
    const label = el.labels && el.labels.length ? el.labels[0].textContent : '';
    const name = (el.getAttribute('aria-label') || label || el.textContent || el.value || '').replace(/\\s+/g, ' ').trim();
    return {name, ring, tag: el.tagName};
}"""


def tab_to(page: Page, name: str, limit: int = 80, back: bool = False) -> None:
    """Tab (or Shift+Tab) until the focused element's name starts with `name`, checking at every
    stop that the focus shows."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        now = page.evaluate(FOCUSED)
        seen.append(now["name"][:30])
        assert now["tag"] == "BODY" or now["ring"], f"no visible focus on {now}"
        if now["name"].startswith(name):
            return
    raise AssertionError(f"{name!r} is not reachable with Tab; stops were: {seen}")


def press_on(page: Page, name: str, key: str = "Enter", navigates: bool = False, **kwargs) -> None:
    """Tab to `name` and press `key`; with `navigates`, wait for the next page."""
    tab_to(page, name, **kwargs)
    if navigates:
        with page.expect_navigation():
            page.keyboard.press(key)
    else:
        page.keyboard.press(key)


def type_into(page: Page, label: str, text: str) -> None:
    tab_to(page, label)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def settled(page: Page) -> None:
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")


LEAD_MAIL = (b"From: Olivia Bennett <olivia@brightwater.example>\r\nTo: Daniel <daniel@northwind.example>\r\n"
             b"Subject: Quote for 40 pallets\r\nMessage-ID: <quote-40@brightwater.example>\r\n"
             b"Date: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nHello Daniel,\r\n\r\nCould you send a quote?\r\n")


@pytest.fixture
def daniels_world(mail_live_server, dovecot, smtp_server):
    """Daniel's mailbox on the test Dovecot holds a lead's email; his Send Mail As is verified."""
    from models import Lead, SendAs, User, db
    from tests.mail_factory import save_record

    login, password = dovecot.new_user("daniel")
    dovecot.deliver(login, LEAD_MAIL)
    smtp_login, smtp_password = smtp_server.new_user()
    app = mail_live_server.app
    with app.app_context():
        daniel = db.session.scalar(db.select(User).where(User.email == "daniel@northwind.example"))
        db.session.add(SendAs(user_id=daniel.id, from_name="Daniel Ortiz", from_address=daniel.email,
                              host=smtp_server.host, port=smtp_server.port, security="starttls", username=smtp_login,
                              password_encrypted=app.extensions["mail"].box.encrypt(smtp_password), verified=True))
        save_record(Lead(), {"first_name": "Olivia", "last_name": "Bennett", "company": "Brightwater",
                             "email": "olivia@brightwater.example", "owner_id": daniel.id})
    return login, password


def test_the_whole_flow_from_the_keyboard_alone(page: Page, mail_live_server, dovecot, smtp_server, daniels_world):
    login, password = daniels_world
    email, crm_password = mail_live_server.rep
    page.goto(mail_live_server.url + "/signin")  # the only navigation not made from the keyboard

    # Sign in.
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(crm_password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # Settings > Mail Accounts > Add POP3 Account.
    press_on(page, "Settings", navigates=True)
    press_on(page, "Mail Accounts", navigates=True)
    press_on(page, "Add POP3 Account", navigates=True)
    expect(page.get_by_role("heading", name="Add POP3 Account")).to_be_visible()
    type_into(page, "Account Name", "Work")
    type_into(page, "Email Address", email)
    type_into(page, "Incoming Server", dovecot.host)
    settled(page)
    tab_to(page, "Security")  # SSL/TLS, as the test Dovecot's second port speaks
    type_into(page, "Port", str(dovecot.ssl_port))
    type_into(page, "Username", login)
    type_into(page, "Password", password)

    # Test Account, then Create Account.
    press_on(page, "Test Account")
    expect(page.locator(".test-report")).to_contain_text("Signed in")
    settled(page)
    # The form was swapped: the focus is back on the button pressed, not lost to the page's top.
    expect(page.get_by_role("button", name="Test Account")).to_be_focused()
    press_on(page, "Create Account", navigates=True)
    expect(page.get_by_role("heading", name="Mail Accounts")).to_be_visible()
    # Creating the account asked for its first poll: the list follows it to its end by itself.
    health = page.locator(".account-health").first
    expect(health).to_contain_text("fetched 1", timeout=20000)
    # Fetch now polls again (nothing new by then; the account is not due, so no other poll runs).
    press_on(page, "Fetch now")
    expect(health).to_contain_text("fetched 0", timeout=20000)
    expect(page.get_by_role("button", name="Fetch now")).to_be_focused()

    # Mail Add-on settings: Custom, with the arrow keys in the mode's radio group; Save.
    press_on(page, "Mail Add-on", navigates=True)
    tab_to(page, "Private")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Custom - Record-level Sharing")).to_be_checked()
    settled(page)
    press_on(page, "Save", navigates=True)  # saved, then the page again (post/redirect/get)
    expect(page.get_by_role("status").first).to_contain_text("Mail Add-on settings saved.")

    # Leads > Olivia Bennett > Share Email (Space), and focus stays on it.
    press_on(page, "Leads", navigates=True)
    press_on(page, "Olivia Bennett", navigates=True)
    expect(page.get_by_role("heading", name="Olivia Bennett")).to_be_visible()
    press_on(page, "Share Email", key="Space")
    expect(page.locator(".share-email")).to_contain_text("shared with everyone")
    expect(page.get_by_label("Share Email")).to_be_checked()
    expect(page.get_by_label("Share Email")).to_be_focused()

    # Read the email, then reply and send.
    press_on(page, "Quote for 40 pallets")
    expect(page.get_by_text("Could you send a quote?").first).to_be_visible()
    press_on(page, "Reply", navigates=True)
    expect(page.get_by_role("heading", name="Reply")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("Re: Quote for 40 pallets")
    before = len(smtp_server.messages)
    tab_to(page, "Message")
    page.keyboard.press("Control+Home")
    page.keyboard.type("Here is the quote: 40 pallets at 12 EUR each.\n\n")
    press_on(page, "Send", navigates=True)
    expect(page.get_by_role("status").first).to_contain_text("Sent")
    assert len(smtp_server.messages) == before + 1
    assert b"Here is the quote" in smtp_server.messages[-1][3]
