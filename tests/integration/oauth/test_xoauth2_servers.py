"""SASL XOAUTH2 against real servers: Dovecot checking tokens by introspection, the
Microsoft-like proxy that refuses the one-line form, and aiosmtpd taking AUTH XOAUTH2."""
from __future__ import annotations

import poplib
import smtplib
import ssl
import time

import pytest

from mail import sasl
from tests.integration.oauth.helpers import local_client, sign_in

MESSAGE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: signed in\r\n\r\nHello.\r\n"
TIMEOUT_S = 5


@pytest.fixture
def mailbox(oauth_server, oauth_dovecot):
    """A user of the provider with one message in their Dovecot mailbox, and a token: (user, token)."""
    client = local_client(oauth_server)
    user, password = oauth_server.new_user("popper")
    oauth_dovecot.mailbox(user)
    oauth_dovecot.deliver(user, MESSAGE)
    return user, sign_in(oauth_server, client, user, password).access_token, client


def assert_no_token(error: BaseException, token: str) -> None:
    assert token not in str(error) and token not in repr(error) and token not in repr(error.args)


def test_pop3_signs_in_with_xoauth2_in_two_steps(oauth_dovecot, mailbox) -> None:
    user, token, _ = mailbox
    pop = poplib.POP3(oauth_dovecot.host, oauth_dovecot.port, timeout=TIMEOUT_S)
    try:
        assert "XOAUTH2" in pop.capa()["SASL"]
        assert sasl.pop3_xoauth2(pop, user, token).startswith(b"+OK")
        assert pop.stat() == (1, len(MESSAGE))
        assert b"\r\n".join(pop.retr(1)[1]) + b"\r\n" == MESSAGE
    finally:
        pop.quit()
    assert f"user=<{user}>, method=XOAUTH2" in oauth_dovecot.log_tail()


def test_pop3s_signs_in_with_xoauth2(oauth_dovecot, mailbox) -> None:
    user, token, _ = mailbox
    context = ssl.create_default_context(cafile=oauth_dovecot.cafile)
    pop = poplib.POP3_SSL(oauth_dovecot.host, oauth_dovecot.ssl_port, timeout=TIMEOUT_S, context=context)
    try:
        sasl.pop3_xoauth2(pop, user, token)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()


@pytest.mark.parametrize("spoil", ["unknown", "revoked", "expired", "other user"])
def test_a_refused_token_gives_a_sentence_and_never_the_token(oauth_server, oauth_dovecot, mailbox, spoil) -> None:
    user, token, client = mailbox
    if spoil == "unknown":
        token = "not-a-token-the-server-issued"
    elif spoil == "revoked":
        oauth_server.revoke_user(user, access_tokens=True)
    elif spoil == "expired":
        token = oauth_server.mint_access_token(user, client.client_id, expires_in_s=1)
        time.sleep(1.1)
    else:
        token = oauth_server.mint_access_token("somebody-else", client.client_id)
    pop = poplib.POP3(oauth_dovecot.host, oauth_dovecot.port, timeout=TIMEOUT_S)
    try:
        with pytest.raises(sasl.SaslRefused) as refused:
            sasl.pop3_xoauth2(pop, user, token)
        assert str(refused.value) == (f"The mail server did not accept the sign-in for {user}: the "
                                      "access was refused or has expired (status 401).")
        assert refused.value.kind == "auth" and refused.value.details["status"] == "401"
        assert_no_token(refused.value, token)
        # The exchange was closed properly: the session still answers.
        assert "XOAUTH2" in pop.capa()["SASL"]
    finally:
        pop.quit()


def test_the_microsoft_like_proxy_refuses_one_line_and_takes_two_steps(one_line_refusing_proxy, mailbox) -> None:
    user, token, _ = mailbox
    proxy = one_line_refusing_proxy
    pop = poplib.POP3(proxy.host, proxy.port, timeout=TIMEOUT_S)
    try:
        with pytest.raises(poplib.error_proto, match="not supported"):
            pop._shortcmd("AUTH XOAUTH2 " + sasl.xoauth2_string(user, token))
        assert proxy.one_line_refused == 1
        sasl.pop3_xoauth2(pop, user, token)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()
    assert proxy.one_line_refused == 1  # the helper never sent the one-line form
    assert proxy.commands == ["AUTH XOAUTH2", "AUTH XOAUTH2", "STAT", "QUIT"]


def test_the_proxy_over_tls_takes_the_two_step_form(one_line_refusing_proxy, mailbox) -> None:
    user, token, _ = mailbox
    proxy = one_line_refusing_proxy
    context = ssl.create_default_context(cafile=proxy.cafile)
    pop = poplib.POP3_SSL(proxy.host, proxy.ssl_port, timeout=TIMEOUT_S, context=context)
    try:
        sasl.pop3_xoauth2(pop, user, token)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()
    assert proxy.one_line_refused == 0 and "AUTH XOAUTH2" in proxy.commands


def smtp_session(server) -> smtplib.SMTP:
    smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_S)
    smtp.starttls(context=ssl.create_default_context(cafile=server.cafile))
    smtp.ehlo()
    return smtp


def test_smtp_signs_in_with_xoauth2_in_two_steps_and_sends(oauth_smtp_server, mailbox) -> None:
    user, token, _ = mailbox
    forms = len(oauth_smtp_server.forms)
    smtp = smtp_session(oauth_smtp_server)
    try:
        assert "XOAUTH2" in smtp.esmtp_features["auth"].split()
        code, _ = sasl.smtp_xoauth2(smtp, user, token)
        assert code == 235
        smtp.sendmail("a@example.com", ["b@example.com"], MESSAGE)
    finally:
        smtp.quit()
    assert oauth_smtp_server.forms[forms:] == ["two-step"]
    assert oauth_smtp_server.messages[-1][:3] == (user, "a@example.com", ["b@example.com"])


def test_smtp_refused_token_gives_the_sentence(oauth_server, oauth_smtp_server, mailbox) -> None:
    user, token, _ = mailbox
    oauth_server.revoke_user(user, access_tokens=True)
    smtp = smtp_session(oauth_smtp_server)
    try:
        with pytest.raises(sasl.SaslRefused, match=f"did not accept the sign-in for {user}: the access "
                                                   r"was refused or has expired \(status 401\)\.") as refused:
            sasl.smtp_xoauth2(smtp, user, token)
        assert_no_token(refused.value, token)
        assert smtp.noop()[0] == 250
    finally:
        smtp.quit()


def test_a_microsoft_sized_token_fits_through_poplib_and_dovecot(oauth_server, oauth_dovecot, mailbox) -> None:
    # Microsoft's access tokens are JWTs of 1,500 to 2,500 characters; the XOAUTH2 line grows by a third.
    user, _, client = mailbox
    oauth_server.access_token_bytes = 1900
    try:
        token = oauth_server.mint_access_token(user, client.client_id)
    finally:
        oauth_server.access_token_bytes = 42
    assert len(sasl.xoauth2_string(user, token)) > 3400
    pop = poplib.POP3(oauth_dovecot.host, oauth_dovecot.port, timeout=TIMEOUT_S)
    try:
        sasl.pop3_xoauth2(pop, user, token)
        assert pop.stat()[0] == 1
    finally:
        pop.quit()
