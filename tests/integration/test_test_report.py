"""Test Account's report (issue 13.7): each error once in plain words, the server's reply behind a
Details toggle, the field at fault marked and focused, Security "None" warned about."""
import re

from tests.integration.test_mail_accounts import form


def test_a_refused_password_is_said_once_with_the_reply_behind_details(rep, dovecot):
    _, client = rep
    user, _ = dovecot.new_user()
    html = client.post("/settings/mail/accounts/test", data=form(dovecot, user, "wrong-password"),
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.count("The server rejected the username or password") == 1
    details = re.search(r"<details[^>]*>\s*<summary>Details</summary>(.*?)</details>", html, re.S)
    assert details and "-ERR [AUTH] Authentication failed." in details.group(1)
    password = re.search(r"<input[^>]*id=\"password\"[^>]*>", html).group(0)
    assert 'aria-invalid="true"' in password and "autofocus" in password
    assert "wrong-password" not in html


def test_a_closed_port_marks_the_port(rep, dovecot):
    _, client = rep
    user, password = dovecot.new_user()
    html = client.post("/settings/mail/accounts/test", data=form(dovecot, user, password, port=1),
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.count("refused the connection on port 1") == 1
    port = re.search(r"<input[^>]*id=\"port\"[^>]*>", html).group(0)
    assert 'aria-invalid="true"' in port and "autofocus" in port


def test_security_none_warns_that_the_password_travels_unencrypted(rep, dovecot):
    _, client = rep
    user, password = dovecot.new_user()
    html = client.post("/settings/mail/accounts/test", data=form(dovecot, user, password, security="none",
                                                                 port=dovecot.port),
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "The account works" in html and "the password and the mail travel unencrypted" in html
    ssl = client.post("/settings/mail/accounts/test", data=form(dovecot, user, password),
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "unencrypted" not in ssl
