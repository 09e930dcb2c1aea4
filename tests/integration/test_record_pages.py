"""Record pages read only what they show (issue 9.7): the related list as a page of its own,
times in the organisation's zone, a fixed number of queries for a list, and no write on a GET."""
import pytest
from sqlalchemy import event

from crm import users
from mail.reading import addon
from models import Lead, MailAccount, OrgSettings, SharingMode, db
from tests.conftest import PASSWORD
from tests.mail_factory import BASE_DATE, make_email


@pytest.fixture
def seller(rep):
    user, client = rep
    lead = Lead(last_name="Bennett", first_name="Olivia", company="Brightwater", email="olivia@brightwater.example",
                owner_id=user.id)
    db.session.add(lead)
    db.session.commit()
    return user, client, lead


def statements_during(request):
    seen = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = request()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return response, seen


def writes(statements):
    return [s for s in statements if s.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "SAVEPOINT")]


def test_the_related_list_without_htmx_is_the_whole_record_page(seller):
    user, client, lead = seller
    for i in range(25):
        make_email(user, subject=f"Message {i:02d}", minutes=i, record_ids=(lead.id,))
    response = client.get(f"/leads/{lead.id}/emails?page=2")  # Reload or Back after Next
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.lstrip().lower().startswith("<!doctype") and "Brightwater" in page
    assert "Message 04" in page and "Message 24" not in page
    fragment = client.get(f"/leads/{lead.id}/emails?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="emails"') and "Message 04" in fragment


def test_times_on_the_record_page_and_accounts_list_are_in_the_organisations_zone(seller):
    user, client, lead = seller
    db.session.get(OrgSettings, 1).timezone = "Asia/Tokyo"  # UTC+9
    make_email(user, subject="Quote", record_ids=(lead.id,))  # 09:30 UTC
    db.session.add(MailAccount(user_id=user.id, name="Work", email=user.email, host="h.example", port=995,
                               security="ssl", username="u", password_encrypted="x", last_checked_at=BASE_DATE))
    db.session.commit()
    record_page = client.get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "2025 18:30" in record_page and "2025 09:30" not in record_page
    accounts_page = client.get("/settings/mail/accounts").get_data(as_text=True)
    assert "2025 18:30" in accounts_page and "2025 09:30" not in accounts_page


@pytest.mark.parametrize("kind,cls", [("leads", Lead)])
def test_a_list_costs_the_same_number_of_queries_whatever_it_holds(seller, kind, cls):
    user, client, _ = seller
    _, few = statements_during(lambda: client.get(f"/{kind}/"))
    for i in range(15):
        owner = users.create_user(f"owner{i}@northwind.example", f"Owner {i}", PASSWORD)
        db.session.add(cls(last_name=f"L{i}", company="C", owner_id=owner.id))
    db.session.commit()
    response, many = statements_during(lambda: client.get(f"/{kind}/"))
    assert "Owner 14" in response.get_data(as_text=True) or "Owner 1" in response.get_data(as_text=True)
    assert len(many) == len(few)


@pytest.mark.parametrize("mode", [SharingMode.CUSTOM, SharingMode.PUBLIC, SharingMode.PRIVATE])
def test_a_record_page_never_writes(seller, mode):
    user, client, lead = seller
    make_email(user, subject="Quote", record_ids=(lead.id,))
    choice = addon.current_choice(user)
    choice.mode = mode
    addon.save(user, choice)
    response, statements = statements_during(lambda: client.get(f"/leads/{lead.id}"))
    assert response.status_code == 200 and writes(statements) == []
    if mode is SharingMode.CUSTOM:  # the Share Email box says what ticking it does when asked, writing nothing
        page = response.get_data(as_text=True)
        assert "What would ticking change?" in page and "becomes visible to others" not in page
        for headers in ({}, {"HX-Request": "true"}):
            asked, statements = statements_during(lambda: client.get(f"/leads/{lead.id}/share/effect", headers=headers))
            assert asked.status_code == 200 and writes(statements) == []
            assert "Ticking it: 1 email on 1 record becomes visible to others." in asked.get_data(as_text=True)
    else:  # Share Email is Custom sharing's: asked in another mode, the answer says so
        asked = client.get(f"/leads/{lead.id}/share/effect")
        assert asked.status_code == 409 and "Share Email is for Custom sharing" in asked.get_data(as_text=True)


def test_the_share_email_preview_is_computed_only_when_asked(seller):
    """Showing the record page or its related list never counts what ticking would do (issue 14)."""
    user, client, lead = seller
    make_email(user, subject="Quote", record_ids=(lead.id,))
    choice = addon.current_choice(user)
    choice.mode = SharingMode.CUSTOM
    addon.save(user, choice)
    asked = []
    real = addon.share_preview
    addon.share_preview = lambda *args: asked.append(args) or real(*args)
    try:
        for path in (f"/leads/{lead.id}", f"/leads/{lead.id}/emails"):
            assert client.get(path).status_code == 200
            assert client.get(path, headers={"HX-Request": "true"}).status_code == 200
        assert asked == []
        fragment = client.get(f"/leads/{lead.id}/share/effect", headers={"HX-Request": "true"}).get_data(as_text=True)
    finally:
        addon.share_preview = real
    assert len(asked) == 1
    assert fragment.startswith('<span id="share-effect"') and "Ticking it: 1 email on 1 record" in fragment


def test_reading_the_organisations_settings_never_writes(admin, client):
    db.session.query(OrgSettings).delete()  # a database emptied by hand: nothing is created by a read
    db.session.commit()
    for url in ("/setup/addons/mail", "/leads/"):
        response, statements = statements_during(lambda: client.get(url))
        assert response.status_code == 200 and writes(statements) == [], url


def test_the_organisations_settings_row_is_seeded_by_the_migrations(app):
    from alembic.script import ScriptDirectory
    from flask_migrate import downgrade, upgrade

    script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config(
        app.extensions["migrate"].directory))
    db.session.query(OrgSettings).delete()
    db.session.commit()
    downgrade(revision=script.get_revision("hsh3_org_seeded").down_revision)
    upgrade()
    row = db.session.get(OrgSettings, 1)
    assert row is not None and row.mail_addon_enabled is False and row.timezone == "UTC"
