"""The Mail Add-on form (issue 13): values survive mode switches, consolidation re-files the mail
already fetched and the page says where it is, plurals in the effect sentence."""
from models import Email, SharingMode, db
from mail.reading import addon
from tests.integration.test_sharing_pages import emailed, team  # noqa: F401  (fixture)
from tests.mail_factory import make_email

FORM = {"mailbox": "default", "consolidate_as": "folder", "consolidate_name": "Customers"}


def test_exclude_domains_survive_private_and_come_back_in_public(team):  # noqa: F811
    client = team["daniel"][1]
    private = client.post("/settings/mail/addon/preview", headers={"HX-Request": "true"},
                          data={**FORM, "mode": "private", "excluded": "northwind.example"}).get_data(as_text=True)
    assert 'name="excluded" value="northwind.example"' in private
    public = client.post("/settings/mail/addon/preview", headers={"HX-Request": "true"},
                         data={**FORM, "mode": "public", "excluded": "northwind.example"}).get_data(as_text=True)
    assert 'value="northwind.example"' in public and "for example" in public


def test_saving_private_keeps_the_excluded_domains_for_the_next_public(team):  # noqa: F811
    daniel, client = team["daniel"]
    client.post("/settings/mail/addon/", data={**FORM, "mode": "public", "excluded": "northwind.example"})
    client.post("/settings/mail/addon/", data={**FORM, "mode": "private", "excluded": "northwind.example"})
    assert addon.current_choice(daniel).mode is SharingMode.PRIVATE
    assert addon.excluded_of(daniel) == ["northwind.example"]


def test_consolidating_moves_customer_mail_already_fetched_and_says_where(team):  # noqa: F811
    daniel, client = team["daniel"]
    customer = emailed(team)
    other = make_email(daniel, subject="Lunch?", sender=("Friend", "friend@else.example"))
    response = client.post("/settings/mail/addon/", data={**FORM, "mode": "private", "consolidate": "y"},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert db.session.get(Email, customer.id).folder == "Customers"
    assert db.session.get(Email, other.id).folder == "Inbox"
    assert "1 customer email is in the folder “Customers” in the Email tab." in page
    assert 'href="/email/?folder=Customers"' in page
    tab = client.get("/email/?folder=Customers").get_data(as_text=True)
    assert "Quote for 40 pallets" in tab and "Lunch?" not in tab
    client.post("/settings/mail/addon/", data={**FORM, "mode": "private", "consolidate": "y",
                                               "consolidate_as": "label", "consolidate_name": "Clients"})
    moved = db.session.get(Email, customer.id)
    assert (moved.folder, moved.label) == ("Inbox", "Clients")
    client.post("/settings/mail/addon/", data={**FORM, "mode": "private"})
    assert db.session.get(Email, customer.id).label == ""


def test_one_email_becomes_visible_in_the_singular():
    assert addon.Effect(shown=1, shown_records=1).sentence() == "1 email on 1 record becomes visible to others."
    assert addon.Effect(hidden=2, hidden_records=1).sentence() == "2 emails on 1 record become hidden from others."
