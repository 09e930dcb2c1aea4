"""Leads and Contacts: list, active search, pagination, new, edit, delete, convert."""
import warnings

import pytest

from crm import records
from tests.mail_factory import save_record, convert_lead
from models import Contact, Lead, Record, RecordKind, db

KINDS = ["leads", "contacts"]


def add(kind, owner, last="Bennett", **fields):
    cls = Lead if kind == "leads" else Contact
    record = cls(last_name=last, owner_id=owner.id, **fields)
    return save_record(record, {})


@pytest.mark.parametrize("kind", KINDS)
def test_new_record_is_saved_with_a_normalised_address(client, admin, kind):
    response = client.post(f"/{kind}/new", data={
        "first_name": "Olivia", "last_name": "Bennett", "company": "Brightwater",
        "email": "  Olivia.Bennett@Brightwater.EXAMPLE ", "phone": "+1 415 555 0134", "owner_id": admin.id})
    assert response.status_code == 303
    record = db.session.scalars(db.select(Record)).one()
    assert record.email == "olivia.bennett@brightwater.example"
    assert record.kind is (RecordKind.LEAD if kind == "leads" else RecordKind.CONTACT)
    page = client.get(response.location).get_data(as_text=True)
    assert "Olivia Bennett" in page and 'id="emails"' in page and ">Emails<" in page


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("field,value,message", [
    ("last_name", "", "Enter the last name."),
    ("email", "not an address", "Enter an email address like ann@example.com."),
    ("phone", "call me maybe", "Use digits"),
    ("first_name", "x" * 81, "At most 80 characters"),
])
def test_invalid_record_form_shows_the_error_beside_the_field_and_saves_nothing(client, admin, kind, field, value, message):
    data = {"first_name": "Ann", "last_name": "Lee", "company": "Acme", "email": "", "phone": "", "owner_id": admin.id}
    data[field] = value
    response = client.post(f"/{kind}/new", data=data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<form id="record-form"') and "<html" not in fragment
    assert message in fragment
    assert db.session.scalar(db.select(db.func.count()).select_from(Record)) == 0


def test_a_lead_needs_a_company(client, admin):
    response = client.post("/leads/new", data={"last_name": "Lee", "owner_id": admin.id})
    assert response.status_code == 422 and "A Lead needs a Company." in response.get_data(as_text=True)


def test_owner_must_be_an_active_user(client, admin):
    response = client.post("/contacts/new", data={"last_name": "Lee", "owner_id": 9999})
    assert response.status_code == 422 and "Choose one of the options." in response.get_data(as_text=True)


def test_htmx_form_success_navigates_to_the_record(client, admin):
    response = client.post("/contacts/new", data={"last_name": "Lee", "owner_id": admin.id},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Redirect"].startswith("/contacts/")


@pytest.mark.parametrize("kind", KINDS)
def test_edit_changes_the_record(client, admin, kind):
    record = add(kind, admin, company="Acme")
    response = client.post(f"/{kind}/{record.id}/edit", data={
        "first_name": "Liv", "last_name": "Bennett", "company": "Acme", "email": "LIV@acme.example",
        "phone": "", "owner_id": admin.id})
    assert response.status_code == 303
    db.session.expire_all()
    assert record.first_name == "Liv" and record.email == "liv@acme.example"


@pytest.mark.parametrize("q,expected", [
    ("bennett", {"Olivia Bennett"}),
    ("OLIV", {"Olivia Bennett"}),
    ("olivia bennett", {"Olivia Bennett"}),
    ("kessler", {"Hannah Schmidt"}),
    ("@sakura", {"Kenji Watanabe"}),
    ("100%", set()),
    ("", {"Olivia Bennett", "Hannah Schmidt", "Kenji Watanabe"}),
])
def test_active_search_by_name_email_or_company(client, admin, q, expected):
    add("leads", admin, "Bennett", first_name="Olivia", company="Brightwater", email="olivia@brightwater.example")
    add("leads", admin, "Schmidt", first_name="Hannah", company="Kessler Maschinenbau", email="h@kessler.example")
    add("leads", admin, "Watanabe", first_name="Kenji", company="Foods", email="kenji@sakura.example")
    add("contacts", admin, "Contactperson", first_name="Olivia", company="Brightwater")
    response = client.get("/leads/", query_string={"q": q}, headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="record-list">') and 'class="topbar"' not in fragment
    found = {name for name in ["Olivia Bennett", "Hannah Schmidt", "Kenji Watanabe", "Olivia Contactperson"] if name in fragment}
    assert found == expected
    assert response.headers["Vary"] == "HX-Request" or "HX-Request" in response.headers["Vary"]


def test_list_without_htmx_is_the_whole_page(client, admin):
    page = client.get("/leads/").get_data(as_text=True)
    assert page.startswith("<!doctype html>") and 'id="record-list"' in page and 'type="search"' in page


def test_history_restore_gets_the_whole_page(client, admin):
    page = client.get("/leads/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert page.get_data(as_text=True).startswith("<!doctype html>")


def test_pagination_pages_through_the_list(client, admin):
    for i in range(records.PAGE_SIZE + 5):
        add("contacts", admin, f"Person{i:03d}")
    first = client.get("/contacts/").get_data(as_text=True)
    second = client.get("/contacts/?page=2").get_data(as_text=True)
    assert "Person000" in first and "Person024" not in first and "Page 1<" in first and "Next" in first
    assert "Person024" in second and "Person000" not in second and "Next" not in second
    # No total to clamp to: a page past the end says so and leads back to the first.
    past = client.get("/contacts/?page=99").get_data(as_text=True)
    assert "Page 99 is past the end of the list." in past and 'href="/contacts/"' in past and "Back to the first page" in past


@pytest.mark.parametrize("kind", KINDS)
def test_delete_asks_first_then_deletes(client, admin, kind):
    record_id = add(kind, admin, company="Acme").id
    confirm = client.get(f"/{kind}/{record_id}/delete")
    assert confirm.status_code == 200 and "This cannot be undone." in confirm.get_data(as_text=True)
    assert db.session.get(Record, record_id) is not None
    assert client.post(f"/{kind}/{record_id}/delete").status_code == 303
    assert db.session.get(Record, record_id) is None


def test_htmx_delete_answers_an_empty_200(client, admin):
    record = add("leads", admin, company="Acme")
    response = client.post(f"/leads/{record.id}/delete", headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.data == b""


@pytest.mark.parametrize("url", ["/leads/9999", "/contacts/9999/edit", "/leads/9999/delete"])
def test_missing_record_is_a_404_page(client, admin, url):
    response = client.get(url)
    assert response.status_code == 404 and "Not found" in response.get_data(as_text=True)


def test_a_contact_is_not_found_under_leads(client, admin):
    contact = add("contacts", admin)
    assert client.get(f"/leads/{contact.id}").status_code == 404


def test_convert_a_lead_into_a_contact(client, admin):
    lead = add("leads", admin, "Bennett", first_name="Olivia", company="Brightwater", email="o@bw.example", phone="123")
    response = client.post(f"/leads/{lead.id}/convert")
    assert response.status_code == 303 and "/contacts/" in response.location
    contact = db.session.scalars(db.select(Contact)).one()
    assert (contact.full_name, contact.company, contact.email, contact.phone) == ("Olivia Bennett", "Brightwater", "o@bw.example", "123")
    db.session.expire_all()
    assert lead.converted_contact_id == contact.id
    assert "Olivia" not in client.get("/leads/", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Converted into the Contact" in client.get(f"/leads/{lead.id}").get_data(as_text=True)
    again = client.post(f"/leads/{lead.id}/convert", follow_redirects=True)
    assert "converted already" in again.get_data(as_text=True)


def test_converting_reuses_a_contact_with_the_same_address(client, admin):
    existing = add("contacts", admin, "Bennett", email="o@bw.example")
    lead = add("leads", admin, "Bennett", company="BW", email="O@BW.example")
    client.post(f"/leads/{lead.id}/convert")
    assert db.session.scalar(db.select(db.func.count()).select_from(Contact)) == 1
    db.session.expire_all()
    assert lead.converted_contact_id == existing.id


def test_deleting_the_converted_contact_keeps_the_lead(client, admin):
    lead_id = add("leads", admin, company="BW").id
    contact = convert_lead(db.session.get(Record, lead_id))
    client.post(f"/contacts/{contact.id}/delete")
    assert db.session.get(Record, lead_id).converted_contact_id is None


def test_record_address_is_indexed(app):
    index_columns = {tuple(c.name for c in ix.columns) for ix in Record.__table__.indexes}
    assert ("email",) in index_columns
    with warnings.catch_warnings():  # SQLite's reflection skips the (lower(last_name), ...) index, warning
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        indexes = db.inspect(db.engine).get_indexes("records")
    assert any(ix["column_names"] == ["email"] for ix in indexes)


def _list_statements(client, path):
    from sqlalchemy import event
    seen = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(path).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_the_leads_list_loads_owners_with_the_page_and_counts_nothing(client, admin, make_user):
    """Issue 14: the same statements whether one owner or many are on the page (each row's owner in
    the page's query), and no count of every open lead (Next comes from one row more)."""
    for i in range(records.PAGE_SIZE + 1):
        add("leads", admin, f"Single{i:02d}")
    one_owner = _list_statements(client, "/leads/")
    owners = [make_user(f"owner{i}@example.com", f"Owner {i}") for i in range(5)]
    for lead in db.session.scalars(db.select(Lead)):
        lead.owner_id = owners[lead.id % 5].id
    db.session.commit()
    many_owners = _list_statements(client, "/leads/")
    assert len(many_owners) == len(one_owner)
    assert not [s for s in many_owners if "count(" in s.lower() and "FROM records" in s]
