"""Blank messages (issue 13.1): an empty subject or message is sent only once the sender says so;
both empty is refused beside the fields. Without JavaScript the answer is a second submit."""
import re

import pytest

from tests.integration.test_send_email import compose, sender  # noqa: F401  (fixture)


@pytest.mark.parametrize("blank,question,answer", [
    ({"subject": ""}, "Send without a subject?", "subject"),
    ({"body": "  "}, "Send an empty message?", "body"),
])
def test_one_empty_part_asks_first_and_sends_on_the_second_submit(sender, smtp_server, blank, question, answer):  # noqa: F811
    user, client, contact, _ = sender
    before = len(smtp_server.messages)
    response = compose(client, contact, **blank)
    assert response.status_code == 422 and question in response.get_data(as_text=True)
    assert f'name="send_blank" value="{answer}"' in response.get_data(as_text=True)
    assert len(smtp_server.messages) == before
    sent = client.post(f"/compose/contacts/{contact.id}", data={
        "to": contact.email, "subject": "Your quote", "body": "Hello Olivia", **blank, "send_blank": answer})
    assert sent.status_code == 303
    assert len(smtp_server.messages) == before + 1


def test_a_confirmation_for_the_subject_does_not_send_an_empty_message(sender, smtp_server):  # noqa: F811
    user, client, contact, _ = sender
    before = len(smtp_server.messages)
    response = compose(client, contact, body="", send_blank="subject")
    assert response.status_code == 422 and "Send an empty message?" in response.get_data(as_text=True)
    assert len(smtp_server.messages) == before


def test_both_empty_is_refused_beside_the_fields(sender, smtp_server):  # noqa: F811
    user, client, contact, _ = sender
    before = len(smtp_server.messages)
    response = compose(client, contact, subject="", body="", send_blank="subject")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="subject-error"' in page and 'id="body-error"' in page and 'aria-invalid="true"' in page
    assert len(smtp_server.messages) == before


def test_the_sent_notice_counts_recipients_in_the_right_number(sender, smtp_server):  # noqa: F811
    user, client, contact, _ = sender
    page = client.post(f"/compose/contacts/{contact.id}", data={"to": contact.email, "subject": "Hi", "body": "x"},
                       follow_redirects=True).get_data(as_text=True)
    assert "to 1 recipient." in page


@pytest.mark.parametrize("htmx,says", [
    (True, "Your files stay attached: quote.pdf."),
    (False, "Choose your files again before you send (quote.pdf)"),
])
def test_the_question_says_whether_the_chosen_files_are_kept(sender, smtp_server, htmx, says):  # noqa: F811
    """With htmx the file input survives the swap (hx-preserve); a page without JavaScript cannot
    keep it, and says so. Either way only the question's button carries the confirmation."""
    import io

    user, client, contact, _ = sender
    response = client.post(f"/compose/contacts/{contact.id}", headers={"HX-Request": "true"} if htmx else {}, data={
        "to": contact.email, "subject": "", "body": "The quote is attached.",
        "attachments": [(io.BytesIO(b"%PDF-1.4 quote"), "quote.pdf", "application/pdf")]})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and says in page
    assert page.count('name="send_blank"') == 1  # an empty hidden one before the button would win
    assert "hx-preserve" in re.search(r'<input[^>]*id="attachments"[^>]*>', page).group(0)
