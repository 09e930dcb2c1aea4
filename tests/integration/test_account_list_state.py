"""Mail Accounts list (issue 13.8): the state in one short line that never contradicts itself,
the figures behind Details, and Fetch now quieter than the row's own information."""
import re
from datetime import timedelta

from models import MailAccount, db, utcnow


def test_an_account_signed_in_but_not_fetched_yet_says_so_once(rep, mail_app):
    user, client = rep
    db.session.add(MailAccount(user_id=user.id, name="Work", email="rita@northwind.example", host="127.0.0.1",
                               port=995, security="ssl", username="rita", is_default=True,
                               password_encrypted=mail_app.extensions["mail"].box.encrypt("x"),
                               last_checked_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    page = client.get("/settings/mail/accounts").get_data(as_text=True)
    assert "Signed in" in page and "mail is fetched soon" in page
    assert "Not polled yet" not in page and "Not checked yet" not in page and "Last checked" not in page
    fetch = re.search(r'<button[^>]*>Fetch now</button>', page).group(0)
    assert "outline" in fetch


def test_after_a_poll_the_line_is_short_and_the_figures_are_on_expand(rep, mail_app):
    user, client = rep
    db.session.add(MailAccount(user_id=user.id, name="Work", email="rita@northwind.example", host="127.0.0.1",
                               port=995, security="ssl", username="rita", is_default=True,
                               password_encrypted=mail_app.extensions["mail"].box.encrypt("x"),
                               last_checked_at=utcnow(), last_poll_at=utcnow(), last_poll_fetched=2,
                               last_poll_linked=1))
    db.session.commit()
    page = client.get("/settings/mail/accounts").get_data(as_text=True)
    assert re.search(r"Checked [^<]*: 2 new\.", page)
    details = re.search(r"<details[^>]*>\s*<summary>Details</summary>(.*?)</details>", page, re.S).group(1)
    assert "fetched 2, linked 1, skipped 0" in details
