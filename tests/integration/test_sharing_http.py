"""The sharing truth table again, through HTTP: the related list, the reading page, the attachment
download and the reply form. A hidden email is a 404 everywhere, exactly like a missing one."""
import pytest

from mail.org import set_mail_addon_enabled
from models import Attachment, db
from tests.conftest import PASSWORD
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
            missing = client.get(url.replace(f"/{email.id}", "/999999")).status_code
            assert status == (200 if want else 404) and missing == 404, (viewer, name, status)
        # The conversation read at its row: a conversation with nothing visible is a missing one,
        # for a page and for htmx alike; the Email tab's reading pane holds only the viewer's own mail.
        for headers in ({}, {"HX-Request": "true"}):
            opened = client.get(f"/leads/{lead.id}/emails/{email.conversation_id}", headers=headers)
            missing = client.get(f"/leads/{lead.id}/emails/999999", headers=headers)
            assert (opened.status_code, missing.status_code) == (200 if want else 404, 404), viewer
            if want:
                assert "Secret plans" in opened.get_data(as_text=True)
        own_pane = client.get(f"/email/conversations/{email.conversation_id}").status_code
        assert own_pane == (200 if viewer == "owner" else 404), viewer
    for url in urls(email, attachment, lead).values():  # a deactivated user's session has ended
        response = clients["deactivated"].get(url)
        assert response.status_code == 302 and "/signin" in response.location
