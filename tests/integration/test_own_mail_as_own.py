"""The viewer's own mail is selected as own mail (issue 14): the Email tab never asks the sharing
rule, which is asked only of other owners' mail, and first of all whether their owner shares at all.
"""
from __future__ import annotations

from sqlalchemy import event

from mail.reading import sharing
from models import Lead, db
from tests.mail_factory import make_email

# Tables only the sharing rule reads: a statement naming one asks the rule.
RULE_TABLES = ("record_shares", "excluded_domains", "addon_settings")


def statements_of(client, path: str) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 200
    return seen


def test_the_email_tab_and_its_reading_pane_never_ask_the_sharing_rule(rep):
    user, client = rep
    lead = Lead(first_name="Olivia", last_name="Bennett", company="Brightwater", email="olivia@brightwater.example",
                owner_id=user.id)
    db.session.add(lead)
    db.session.commit()
    email = make_email(user, subject="Own customer mail", record_ids=(lead.id,))
    db.session.commit()
    # (The reading pane tells the owner who else can see each message: that label asks the rule.)
    for path in ("/email/", "/email/?unread=1", "/email/?label=Customers"):
        asked = [s for s in statements_of(client, path) if "FROM emails" in s and any(t in s for t in RULE_TABLES)]
        assert asked == [], path


def _sql(condition) -> str:
    return str(condition.compile(db.engine, compile_kwargs={"literal_binds": True})).lower()


def test_the_rule_asks_first_whether_the_owner_shares_at_all(rep):
    """An owner without a settings row, or a Private one, stops at the first branch."""
    sql = _sql(sharing.shared_with_others())
    asked_first = sql.index("sharing_mode in ('public', 'custom')")
    assert sql.lstrip("( ").startswith("exists (select * \nfrom addon_settings"), sql
    assert all(asked_first < sql.index(table) for table in ("email_links", "record_shares", "excluded_domains"))


def test_other_owners_mail_only_is_asked_the_rule(rep):
    user, _ = rep
    sql = _sql(sharing.visible_condition(user))
    own, _, others = sql.partition(" or ")
    assert own.strip("( ") == f"emails.owner_id = {user.id}"
    assert others.lstrip("( ").startswith(f"emails.owner_id != {user.id} and"), others


def test_folder_unread_counts_stop_at_99_plus(rep):
    """The side list counts a folder's unread mail up to a bound (its cost stays bounded): 100 or
    more unread messages show as 99+."""
    from mail.reading import mailbox
    user, client = rep
    for n in range(mailbox.UNREAD_SHOWN_MAX):
        make_email(user, subject=f"Unread {n}", minutes=n)
    make_email(user, subject="Unread in Sent", folder="Sent", minutes=500)
    db.session.commit()
    side = mailbox.side_lists(user)
    assert {f.name: f.unread_text for f in side["folders"]} == {"Inbox": "99+", "Sent": "1"}
    page = client.get("/email/").get_data(as_text=True)
    assert 'title="99+ unread"' in page
