"""Sharing through HTTP: the Email related list, Share Email, the settings page, 404 for hidden mail."""
import re

import pytest
from sqlalchemy import event

from crm import users
from mail.reading import addon
from models import AddonSettings, Direction, Lead, SharingMode, db
from tests.conftest import PASSWORD
from tests.mail_factory import make_email


@pytest.fixture
def team(mail_app):
    """Two sales reps and the CEO, each with a client; a lead Daniel emailed with."""
    people = {}
    for key, email, admin in [("daniel", "daniel@northwind.example", False), ("priya", "priya@northwind.example", False),
                              ("ceo", "margaret@northwind.example", True)]:
        user = users.create_user(email, key.title(), PASSWORD, admin=admin)
        client = mail_app.test_client()
        client.post("/signin", data={"email": email, "password": PASSWORD})
        people[key] = (user, client)
    lead = Lead(last_name="Bennett", first_name="Olivia", company="Brightwater", email="olivia@brightwater.example",
                owner_id=people["daniel"][0].id)
    db.session.add(lead)
    db.session.commit()
    people["lead"] = lead
    return people


def emailed(team, subject="Quote for 40 pallets", **kwargs):
    daniel = team["daniel"][0]
    return make_email(daniel, subject=subject, sender=("Olivia Bennett", "olivia@brightwater.example"),
                      to=f"Daniel <{daniel.email}>", record_ids=(team["lead"].id,), **kwargs)


def set_mode(user, mode, excluded=()):
    choice = addon.current_choice(user)
    choice.mode, choice.excluded = mode, list(excluded)
    addon.save(user, choice)


def without_token(response):
    # The CSRF token is signed with the time, so two pages a second apart differ only there.
    return re.sub(r'("X-CSRFToken": "|name="csrf_token" value=")[^"]*"', r'\1"', response.get_data(as_text=True))


def page_of(client, lead):
    return client.get(f"/leads/{lead.id}").get_data(as_text=True)


def test_private_email_is_listed_for_its_owner_only(team):
    email = emailed(team)
    lead = team["lead"]
    daniel_page = page_of(team["daniel"][1], lead)
    assert "Quote for 40 pallets" in daniel_page and "Only you" in daniel_page
    assert "Your email is private" in daniel_page and 'name="share_email"' not in daniel_page
    for who in ("priya", "ceo"):
        assert "Quote for 40 pallets" not in page_of(team[who][1], lead)
        client = team[who][1]
        for url in [f"/email/{email.id}", f"/email/{email.id}/body", f"/email/{email.id}/raw"]:
            hidden, missing = client.get(url), client.get(url.replace(str(email.id), "999999"))
            assert hidden.status_code == missing.status_code == 404
            assert without_token(hidden) == without_token(missing)


def test_share_email_checkbox_shares_and_unshares_in_place(team):
    emailed(team)
    daniel, client = team["daniel"]
    lead = team["lead"]
    set_mode(daniel, SharingMode.CUSTOM)
    page = page_of(client, lead)
    assert 'name="share_email"' in page and "What would ticking change?" in page
    asked = client.get(f"/leads/{lead.id}/share/effect", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Ticking it: 1 email on 1 record becomes visible to others." in asked
    response = client.post(f"/leads/{lead.id}/share", data={"share_email": "on"}, headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert response.headers["HX-Trigger"] == "emailShareChanged"
    assert fragment.lstrip().startswith('<section id="emails"') and "Everyone: shared through this record" in fragment
    assert "Quote for 40 pallets" in page_of(team["priya"][1], lead)
    response = client.post(f"/leads/{lead.id}/share", data={}, headers={"HX-Request": "true"})
    assert "Only you" in response.get_data(as_text=True)
    assert "Quote for 40 pallets" not in page_of(team["priya"][1], lead)
    assert [c.what for c in addon.history(daniel)][:2] == ["Share Email on Olivia Bennett"] * 2


def test_share_email_is_refused_outside_custom_mode(team):
    lead = team["lead"]
    response = team["daniel"][1].post(f"/leads/{lead.id}/share", data={"share_email": "on"})
    assert response.status_code == 409
    assert addon.is_shared(team["daniel"][0], lead.id) is False


def test_public_mode_shows_no_checkbox_and_shares_all_but_excluded_domains(team):
    emailed(team)
    daniel, client = team["daniel"]
    set_mode(daniel, SharingMode.PUBLIC)
    assert 'name="share_email"' not in page_of(client, team["lead"])
    assert "Everyone" in page_of(client, team["lead"])
    assert "Quote for 40 pallets" in page_of(team["ceo"][1], team["lead"])
    set_mode(daniel, SharingMode.PUBLIC, excluded=["brightwater.example"])
    assert "Quote for 40 pallets" not in page_of(team["ceo"][1], team["lead"])


def test_related_list_pages_and_htmx_gets_the_block(team):
    for i in range(25):
        emailed(team, subject=f"Message {i:02d}", minutes=i)
    client = team["daniel"][1]
    lead = team["lead"]
    first = page_of(client, lead)
    assert "Message 24" in first and "Message 04" not in first  # newest first, 20 a page
    second = client.get(f"/leads/{lead.id}/emails?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert second.lstrip().startswith('<section id="emails"') and "Message 04" in second and "Message 24" not in second


def test_related_list_costs_the_same_number_of_queries_whatever_its_size(team, mail_app):
    client = team["daniel"][1]
    lead = team["lead"]
    set_mode(team["daniel"][0], SharingMode.CUSTOM)

    def count_queries():
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            client.get(f"/leads/{lead.id}/emails", headers={"HX-Request": "true"})
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    emailed(team, subject="one")
    few = count_queries()
    for i in range(30):
        emailed(team, subject=f"more {i}")
    assert count_queries() == few


def test_settings_page_swaps_the_mode_explanation_and_shows_exclude_domains_for_public_only(team):
    client = team["priya"][1]
    page = client.get("/settings/mail/addon/").get_data(as_text=True)
    assert "Private - Do not share Emails with colleagues" in page and "Exclude Domains" not in page
    for mode, text in [("custom", "Share Emails from the selected leads and contacts"),
                       ("public", "Share Emails from all leads and contacts")]:
        fragment = client.post("/settings/mail/addon/preview", data={"mailbox": "default", "mode": mode,
                                                                     "consolidate_as": "folder"},
                               headers={"HX-Request": "true"}).get_data(as_text=True)
        assert fragment.lstrip().startswith('<form id="addon-form"') and text in fragment
        assert ("Exclude Domains" in fragment) is (mode == "public")


def test_settings_preview_says_what_saving_will_do_and_save_records_it(team):
    emailed(team)
    client = team["daniel"][1]
    data = {"mailbox": "default", "mode": "public", "excluded": "", "consolidate_as": "folder"}
    preview = client.post("/settings/mail/addon/preview", data=data).get_data(as_text=True)
    assert "1 email on 1 record becomes visible to others." in preview
    assert db.session.get(AddonSettings, team["daniel"][0].id) is None  # nothing saved by a preview
    assert client.post("/settings/mail/addon/", data=data).status_code == 303
    history = client.get("/settings/mail/addon/history").get_data(as_text=True)
    assert "Public - Complete Sharing" in history and "Private - Only me" in history


@pytest.mark.parametrize("excluded,message", [
    ("a.example b.example c.example d.example e.example f.example", "You can exclude at most 5 domains."),
    ("not a domain!", "is not a domain"),
])
def test_bad_exclude_domains_are_inline_errors(team, excluded, message):
    client = team["daniel"][1]
    response = client.post("/settings/mail/addon/", data={"mailbox": "default", "mode": "public", "excluded": excluded,
                                                          "consolidate_as": "folder"}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert db.session.get(AddonSettings, team["daniel"][0].id) is None


def test_another_users_mailbox_cannot_be_chosen(team, mail_app):
    from models import MailAccount
    priya = team["priya"][0]
    account = MailAccount(user_id=priya.id, name="P", email=priya.email, host="h", port=995, security="ssl",
                          username="p", password_encrypted="x")
    db.session.add(account)
    db.session.commit()
    response = team["daniel"][1].post("/settings/mail/addon/", data={"mailbox": str(account.id), "mode": "private",
                                                                    "consolidate_as": "folder"})
    assert response.status_code == 422


def test_administrator_cannot_read_private_mail(team):
    email = emailed(team)
    ceo_client = team["ceo"][1]
    assert ceo_client.get(f"/email/{email.id}").status_code == 404
    assert "Quote for 40 pallets" not in ceo_client.get("/email/?q=Quote").get_data(as_text=True)


def test_excluding_ones_own_company_keeps_customer_mail_that_copies_a_colleague_shared(team):
    """The help page's own example: exclude your company's domain, and internal mail stays private."""
    daniel, client = team["daniel"]
    emailed(team, subject="Order confirmed", cc="Priya <priya@northwind.example>")
    make_email(daniel, subject="Lunch on Friday?", sender=("Priya", "priya@northwind.example"),
               to=f"Daniel <{daniel.email}>", cc="olivia@brightwater.example", record_ids=(team["lead"].id,))
    response = client.post("/settings/mail/addon/", data={"mailbox": "default", "mode": "public",
                                                          "excluded": "NorthWind.example.", "consolidate_as": "folder"})
    assert response.status_code == 303
    ceo_sees = page_of(team["ceo"][1], team["lead"])
    assert "Order confirmed" in ceo_sees and "Lunch on Friday?" not in ceo_sees
    assert "Only you: from an excluded domain, northwind.example" in page_of(client, team["lead"])


def test_settings_accept_a_unicode_domain_and_show_it_as_written(team):
    client = team["daniel"][1]
    response = client.post("/settings/mail/addon/", data={"mailbox": "default", "mode": "public",
                                                          "excluded": "Bücher.example", "consolidate_as": "folder"})
    assert response.status_code == 303
    assert addon.excluded_of(team["daniel"][0]) == ["xn--bcher-kva.example"]
    page = client.get("/settings/mail/addon/").get_data(as_text=True)
    assert 'value="bücher.example"' in page
    assert "a copy (Cc) alone never makes an email private" in page
