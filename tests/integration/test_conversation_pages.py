"""The pages over conversations: the related list and the Email tab one row per conversation,
the reader at its row and in the pane (its URL is the page's), the Customer mail filter, and the
Leads and Contacts lists that know their mail."""
from __future__ import annotations

import re

import pytest

from crm import users
from mail.reading import addon
from models import Contact, Direction, Lead, SharingMode, db
from tests.conftest import PASSWORD
from tests.integration.test_record_pages import statements_during
from tests.mail_factory import make_email

CUSTOMER = ("Olivia Bennett", "olivia@brightwater.example")


@pytest.fixture
def seller(rep):
    user, client = rep
    lead = Lead(last_name="Bennett", first_name="Olivia", company="Brightwater", email=CUSTOMER[1], owner_id=user.id)
    db.session.add(lead)
    db.session.commit()
    return user, client, lead


def thread(user, lead, subject, start, replies, sender=CUSTOMER):
    """A conversation of `replies` + 1 messages, alternating customer and user."""
    first = make_email(user, subject=subject, sender=sender, minutes=start, message_id=f"<{subject}-0@x.example>",
                       record_ids=(lead.id,), text=f"{subject} opening")
    emails = [first]
    for n in range(1, replies + 1):
        sent = n % 2 == 1
        emails.append(make_email(
            user, subject=f"Re: {subject}", minutes=start + n, message_id=f"<{subject}-{n}@x.example>",
            in_reply_to=f"<{subject}-{n - 1}@x.example>", record_ids=(lead.id,), text=f"{subject} reply {n}",
            sender=("Rita Rep", user.email) if sent else sender, to=sender[1] if sent else user.email,
            direction=Direction.SENT if sent else Direction.RECEIVED, folder="Sent" if sent else "Inbox"))
    return emails


def rows(html: str) -> list[str]:
    return [r.strip() for r in re.findall(r'class="subject conversation-toggle"[^>]*>([^<]*)', html)]


def test_the_related_list_is_one_row_per_conversation_newest_first(seller):
    user, client, lead = seller
    thread(user, lead, "Order 4711", 0, 2)
    thread(user, lead, "Showroom", 10, 0)
    thread(user, lead, "Quote", 5, 3)
    html = client.get(f"/leads/{lead.id}/emails", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert rows(html) == ["Showroom", "Re: Quote", "Re: Order 4711"]
    assert 'title="4 messages"' in html and 'title="3 messages"' in html
    assert "Quote reply 3" in html and "Quote opening" not in html  # the latest message's preview


def test_the_reader_opens_at_its_row_and_its_url_renders_the_whole_page(seller):
    user, client, lead = seller
    emails = thread(user, lead, "Order 4711", 0, 2)
    thread(user, lead, "Showroom", 10, 0)
    url = f"/leads/{lead.id}/emails/{emails[0].conversation_id}"
    page = client.get(url).get_data(as_text=True)  # Reload, Back, a link: the whole record page
    assert "<h1>Olivia Bennett</h1>" in page
    fragment = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="emails"')
    for html in (page, fragment):
        row = html[html.index(f'data-conversation="{emails[0].conversation_id}"'):]  # the last row: the older
        assert 'aria-expanded="true"' in row and 'aria-current="true"' in row
        # Oldest first, the latest one open; the reader at the row, not a live region.
        bodies = re.findall(r"Order 4711 (opening|reply \d)\s*</div>", row)
        assert bodies == ["opening", "reply 1", "reply 2"]
        assert row.count("<details open>") == 1 and row.index("<details open>") > row.index("Order 4711 reply 1")
        assert "aria-live" not in html[html.index('id="emails"'):]
        assert f'href="/leads/{lead.id}/emails" hx-get="/leads/{lead.id}/emails"' in row  # Close
    assert html.count('aria-expanded="false"') == 1  # the other row, folded


def test_opening_a_conversation_marks_the_owners_messages_read(seller):
    user, client, lead = seller
    emails = thread(user, lead, "Order 4711", 0, 2)
    db.session.commit()
    assert "unread" in client.get(f"/leads/{lead.id}/emails").get_data(as_text=True)
    client.get(f"/leads/{lead.id}/emails/{emails[0].conversation_id}")
    db.session.expire_all()
    assert all(e.is_read for e in emails)


def test_the_email_tab_reads_in_a_pane_and_filters_customer_mail(seller):
    user, client, lead = seller
    emails = thread(user, lead, "Order 4711", 0, 1)
    make_email(user, subject="Newsletter", sender=("News", "news@lists.example"), minutes=30)
    inbox = client.get("/email/").get_data(as_text=True)
    assert re.findall(r'<a id="conversation-row-\d+"[^>]*>([^<]*)</a>', inbox) == ["Newsletter", "Order 4711"]
    customer = client.get("/email/?customer=1").get_data(as_text=True)
    assert re.findall(r'<a id="conversation-row-\d+"[^>]*>([^<]*)</a>', customer) == ["Order 4711"]
    assert 'href="/email/?customer=1" aria-current="true"' in customer
    url = f"/email/conversations/{emails[0].conversation_id}?customer=1"
    page = client.get(url).get_data(as_text=True)
    assert 'class="mail-reading is-reading"' in page and 'class="reading-pane"' in page
    assert "Order 4711 opening" in page and "Order 4711 reply 1" in page  # the Inbox message and my Sent reply
    fragment = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    # The pane's block, with a <title> for htmx to set the page's (the conversation's subject).
    assert re.match(r'\s*<title>Re: Order 4711 · Email · CRM Mail Add-on</title>\s*<div id="mail-reading"', fragment)
    assert "mail-side" not in fragment
    # Filed under the lead (a link), and who can see my message and why.
    assert f'<a href="/leads/{lead.id}">Olivia Bennett</a>' in page and "Only you" in page
    assert 'href="/email/?customer=1"' in page[page.index('class="reading-pane"'):]  # Back keeps the view


def test_the_email_tab_says_who_can_see_my_mail_and_why(seller):
    user, client, lead = seller
    choice = addon.current_choice(user)
    choice.mode, choice.excluded = SharingMode.PUBLIC, ["brightwater.example"]
    addon.save(user, choice)
    emails = thread(user, lead, "Order 4711", 0, 0)
    page = client.get(f"/email/conversations/{emails[0].conversation_id}").get_data(as_text=True)
    assert "Only you: from an excluded domain, brightwater.example" in page


def test_the_lists_cost_the_same_number_of_queries_whatever_they_hold(seller):
    user, client, lead = seller
    thread(user, lead, "Order 1", 0, 1)
    db.session.commit()
    few = [len(statements_during(lambda u=u: client.get(u, headers={"HX-Request": "true"}))[1])
           for u in (f"/leads/{lead.id}/emails", "/email/")]
    for n in range(2, 30):
        thread(user, lead, f"Order {n}", n * 10, n % 4)
    db.session.commit()
    many = [len(statements_during(lambda u=u: client.get(u, headers={"HX-Request": "true"}))[1])
            for u in (f"/leads/{lead.id}/emails", "/email/")]
    assert many == few


def test_records_lists_know_their_mail_as_the_viewer_sees_it(seller):
    user, client, lead = seller
    colleague = users.create_user("pat@northwind.example", "Pat", PASSWORD)
    other = Lead(last_name="Zed", first_name="Zoe", company="Alpha", email="zoe@alpha.example", owner_id=colleague.id)
    db.session.add(other)
    db.session.commit()
    thread(user, lead, "Order 4711", 0, 2)
    make_email(colleague, subject="Private to Pat", sender=CUSTOMER, minutes=90, record_ids=(lead.id,))
    html = client.get("/leads/").get_data(as_text=True)
    row = html[html.index(f'href="/leads/{lead.id}"'):]
    row = row[:row.index("</tr>")]
    assert '<td class="num" data-label="Emails">3</td>' in row  # Pat's private email is not counted for Rita
    assert "3 Mar 2025" in row  # last contacted: the latest she may see
    assert "Last contacted" in html and "Emails" in html
    mine = client.get("/leads/?mine=1").get_data(as_text=True)
    assert "Olivia Bennett" in mine and "Zoe Zed" not in mine
    by_company = client.get("/leads/?sort=company").get_data(as_text=True)
    assert by_company.index("Zoe Zed") < by_company.index("Olivia Bennett")
    descending = client.get("/leads/?sort=-company").get_data(as_text=True)
    assert descending.index("Olivia Bennett") < descending.index("Zoe Zed")
    assert 'aria-sort="descending"' in descending


def test_a_records_email_field_opens_send_email_not_mailto(seller):
    user, client, lead = seller
    page = client.get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "mailto:" not in page
    assert f'<a href="/compose/leads/{lead.id}" title="Send Email to {lead.email}">{lead.email}</a>' in page
