"""The sharing truth table again, through HTTP: the related list, the reading page, the attachment
download and the reply form. A hidden email is a 404 everywhere, exactly like a missing one."""
import pytest

from mail.org import set_mail_addon_enabled
from models import Attachment, Direction, SharingMode, db
from tests.conftest import PASSWORD
from tests.integration.test_email_tab import _normalised  # a page less its fresh CSRF token
from tests.integration.test_sharing_rule import CASES, configure, expected, make_email, world  # noqa: F401

HTTP_VIEWERS = ["owner", "other", "admin"]


@pytest.fixture
def clients(world, app):  # noqa: F811
    set_mail_addon_enabled(True)
    signed_in = {}
    for viewer in HTTP_VIEWERS + ["deactivated"]:
        client = app.test_client()
        user = world[viewer]
        if viewer == "deactivated":  # signed in while still active, then deactivated
            user.active = True
            db.session.commit()
        client.post("/signin", data={"email": user.email, "password": PASSWORD})
        if viewer == "deactivated":
            user.active = False
            db.session.commit()
        signed_in[viewer] = client
    return signed_in


def urls(email, attachment, lead):
    return {"read": f"/email/{email.id}", "attachment": f"/email/{email.id}/attachments/{attachment.id}",
            "reply": f"/compose/reply/{email.id}"}


@pytest.mark.parametrize("mode,share,excluded,direction", CASES,
                         ids=[f"{m.value}-share_{s}-excl_{e}-{d.value}" for m, s, e, d in CASES])
def test_truth_table_through_http(world, clients, mode, share, excluded, direction):  # noqa: F811
    configure(world, mode, share, excluded, direction)
    email = make_email(world["owner"], direction, world["lead"], subject="Secret plans")
    attachment = Attachment(email_id=email.id, filename="plan.pdf", content_type="application/pdf", size=3,
                            content=b"pdf")
    db.session.add(attachment)
    db.session.commit()
    lead = world["lead"]
    for viewer in HTTP_VIEWERS:
        client, want = clients[viewer], expected(mode, viewer, share, excluded, direction)
        listed = client.get(f"/leads/{lead.id}/emails", headers={"HX-Request": "true"}).get_data(as_text=True)
        assert ("Secret plans" in listed) is want, viewer
        for name, url in urls(email, attachment, lead).items():
            status = client.get(url).status_code
            assert status == (200 if want else 404), (viewer, name, status)
        # The conversation read at its row: a conversation with nothing visible is a missing one,
        # for a page and for htmx alike; the Email tab's reading pane holds only the viewer's own mail.
        # (That a hidden one answers byte for byte like a missing one: the test below.)
        for headers in ({}, {"HX-Request": "true"}):
            opened = client.get(f"/leads/{lead.id}/emails/{email.conversation_id}", headers=headers)
            assert opened.status_code == (200 if want else 404), viewer
            if want:
                assert "Secret plans" in opened.get_data(as_text=True)
        own_pane = client.get(f"/email/conversations/{email.conversation_id}").status_code
        assert own_pane == (200 if viewer == "owner" else 404), viewer
    for url in urls(email, attachment, lead).values():  # a deactivated user's session has ended
        response = clients["deactivated"].get(url)
        assert response.status_code == 302 and "/signin" in response.location


@pytest.mark.parametrize("viewer", ["other", "admin"])
def test_a_hidden_email_answers_every_route_exactly_like_a_missing_one(world, clients, viewer):  # noqa: F811
    """What the table checks case by case as a 404, here byte for byte against an id that does
    not exist, on every route the table walks (a Private owner's mail: hidden from everyone else)."""
    configure(world, SharingMode.PRIVATE, "on", None, Direction.RECEIVED)
    email = make_email(world["owner"], Direction.RECEIVED, world["lead"], subject="Secret plans")
    attachment = Attachment(email_id=email.id, filename="plan.pdf", content_type="application/pdf", size=3,
                            content=b"pdf")
    db.session.add(attachment)
    db.session.commit()
    lead, client = world["lead"], clients[viewer]
    pairs = [(url, url.replace(f"/{email.id}", f"/{email.id + 1000}")) for url in urls(email, attachment, lead).values()]
    pairs += [(f"/leads/{lead.id}/emails/{email.conversation_id}", f"/leads/{lead.id}/emails/{email.conversation_id + 1000}"),
              (f"/email/conversations/{email.conversation_id}", f"/email/conversations/{email.conversation_id + 1000}")]
    for hidden_url, missing_url in pairs:
        for headers in ({}, {"HX-Request": "true"}):
            hidden, missing = client.get(hidden_url, headers=headers), client.get(missing_url, headers=headers)
            assert hidden.status_code == 404, hidden_url
            assert _normalised(hidden) == _normalised(missing), hidden_url
            assert "Secret plans" not in hidden.get_data(as_text=True)
