"""SMTP against a real aiosmtpd (STARTTLS and implicit TLS) and loopback fault servers."""
import logging
import time
from email.message import EmailMessage

import pytest

from mail.outbound import smtp
from mail.errors import MailError
from mail.guard import GuardPolicy
from mail.outbound.smtp import SmtpSettings

LOCAL = GuardPolicy(allow_local=True)
FAST_TIMEOUT_S = 1


def settings_for(server, user: str, password: str, security: str = "starttls", **changes) -> SmtpSettings:
    port = server.ssl_port if security == "ssl" else server.port
    values = dict(host=server.host, port=port, security=security, username=user,
                  password=password, cafile=server.cafile)
    values.update(changes)
    return SmtpSettings(**values)


@pytest.fixture
def sender(smtp_server):
    return smtp_server.new_user()


def new_message(subject: str = "Quote for 12 chairs") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Ann Example <ann@example.com>"
    message["To"] = "Bob <bob@example.net>"
    message["Cc"] = "carol@example.org"
    message["Bcc"] = "dave@example.com"
    message["Subject"] = subject
    message.set_content("Hello Bob,\n\nhere is the quote.\n")
    return message


@pytest.mark.parametrize("security, labels", [
    ("starttls", ["Name resolved", "Connected", "EHLO", "TLS established", "Signed in"]),
    ("ssl", ["Name resolved", "Connected", "TLS established", "EHLO", "Signed in"]),
    ("none", ["Name resolved", "Connected", "EHLO", "Signed in"]),
])
def test_identity_reports_each_step(smtp_server, sender, security, labels):
    report = smtp.test_identity(settings_for(smtp_server, *sender, security), LOCAL)
    assert report.ok and report.error is None
    assert [(step.label, step.ok) for step in report.steps] == [(label, True) for label in labels]
    tls_step = next((s for s in report.steps if s.label == "TLS established"), None)
    assert tls_step is None or tls_step.detail.startswith("TLSv1.")


def test_wrong_password_reports_server_reply(smtp_server, sender):
    wrong = "Wrong-Smtp-Secret-7"
    report = smtp.test_identity(settings_for(smtp_server, sender[0], wrong), LOCAL)
    assert report.error.kind == "auth"
    assert str(report.error).startswith("The server rejected the username or password: 535 ")
    assert report.steps[-1].label == "Signed in" and not report.steps[-1].ok
    assert wrong not in repr(report)


def test_self_signed_certificate_is_refused_without_its_ca(smtp_server, sender):
    for security in ("starttls", "ssl"):
        report = smtp.test_identity(settings_for(smtp_server, *sender, security, cafile=None), LOCAL)
        assert report.error.kind == "certificate"
        assert str(report.error).endswith(": it is self-signed.")
        assert report.steps[-1].label == "TLS established"


def test_silent_server_times_out_within_the_configured_timeout(silent_server, sender):
    settings = SmtpSettings("127.0.0.1", silent_server, "starttls", *sender, timeout_s=FAST_TIMEOUT_S)
    started = time.monotonic()
    report = smtp.test_identity(settings, LOCAL)
    assert time.monotonic() - started < FAST_TIMEOUT_S + 1
    assert report.error.kind == "timeout"
    assert str(report.error) == "The server did not answer within 1 second."


def test_closed_port_reports_refused(closed_port, sender):
    report = smtp.test_identity(SmtpSettings("127.0.0.1", closed_port, "ssl", *sender), LOCAL)
    assert report.error.kind == "refused"
    assert [(s.label, s.ok) for s in report.steps] == [("Name resolved", True), ("Connected", False)]


def test_guard_refuses_loopback_unless_local_servers_are_allowed(smtp_server, sender):
    report = smtp.test_identity(settings_for(smtp_server, *sender), GuardPolicy())
    assert report.error.kind == "destination"
    assert [(s.label, s.ok) for s in report.steps] == [("Name resolved", False)]
    with pytest.raises(MailError, match="^This server is not allowed: "):
        smtp.send(settings_for(smtp_server, *sender), GuardPolicy(), new_message(), ["bob@example.net"])


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_send_delivers_to_exactly_the_given_recipients(smtp_server, sender, security):
    recipients = ["bob@example.net", "carol@example.org", "dave@example.com"]
    subject = f"Quote via {security}"
    smtp.send(settings_for(smtp_server, *sender, security), LOCAL, new_message(subject), recipients)

    login, mail_from, rcpt_tos, content = next(m for m in smtp_server.messages
                                               if f"Subject: {subject}".encode() in m[3])
    assert login == sender[0]
    assert mail_from == "ann@example.com"
    assert rcpt_tos == recipients
    assert b"here is the quote." in content
    assert b"Bcc:" not in content  # blind copies stay blind


@pytest.mark.parametrize("header", ["Subject", "To", "From", "X-Custom"])
@pytest.mark.parametrize("value", ["Hi\r\nBcc: victim@example.com", "Hi\nX-Evil: 1", "Hi\rthere"])
def test_header_with_a_line_break_is_refused(smtp_server, sender, header, value):
    message = new_message("Injected")
    del message[header]
    message.set_raw(header, value)  # bypasses the email package's own check, as raw input could
    before = len(smtp_server.messages)
    with pytest.raises(MailError) as caught:
        smtp.send(settings_for(smtp_server, *sender), LOCAL, message, ["bob@example.net"])
    assert caught.value.kind == "protocol"
    assert str(caught.value) == f"The {header} header contains a line break, so the message was not sent."
    assert len(smtp_server.messages) == before


def test_recipient_with_a_line_break_is_refused(smtp_server, sender):
    with pytest.raises(MailError, match="line break"):
        smtp.send(settings_for(smtp_server, *sender), LOCAL, new_message(),
                  ["bob@example.net\r\nRCPT TO:<evil@example.com>"])


def test_send_with_wrong_password_raises_auth(smtp_server, sender):
    with pytest.raises(MailError) as caught:
        smtp.send(settings_for(smtp_server, sender[0], "nope", "ssl"), LOCAL, new_message(),
                  ["bob@example.net"])
    assert caught.value.kind == "auth"


def test_password_never_appears_in_errors_reports_or_logs(smtp_server, sender, silent_server, caplog):
    caplog.set_level(logging.DEBUG)
    password = "Never-Show-This-Either-43"
    cases = [
        settings_for(smtp_server, sender[0], password),
        settings_for(smtp_server, sender[0], password, "ssl"),
        settings_for(smtp_server, sender[0], password, "ssl", cafile=None),
        SmtpSettings("127.0.0.1", silent_server, "starttls", sender[0], password, timeout_s=0.2),
    ]
    texts = [repr(cases[0])]
    for settings in cases:
        report = smtp.test_identity(settings, LOCAL)
        assert not report.ok
        texts += [str(report.error), repr(report)]
        with pytest.raises(MailError) as caught:
            smtp.send(settings, LOCAL, new_message(), ["bob@example.net"])
        texts += [str(caught.value), repr(caught.value.__cause__)]
    assert not any(password in text for text in texts)
    assert password not in caplog.text


def test_a_refused_hosts_report_never_shows_what_it_resolves_to(sender):
    report = smtp.test_identity(SmtpSettings("localhost", 587, "starttls", *sender), GuardPolicy())
    assert report.error.kind == "destination"
    shown = " ".join(f"{step.label} {step.detail}" for step in report.steps) + str(report.error)
    assert "127.0.0.1" not in shown and "::1" not in shown


class _EchoingAuth:
    """A server that quotes the whole AUTH exchange back in its refusal, in the forms the
    client sent: base64 of PLAIN's \\0user\\0password, or LOGIN's username and password."""

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from base64 import b64encode
        from aiosmtpd.smtp import AuthResult
        login, password = auth_data.login, auth_data.password
        if mechanism == "PLAIN":
            said = b64encode(b"\0" + login + b"\0" + password).decode()
        else:
            said = f"{b64encode(login).decode()} {b64encode(password).decode()}"
        return AuthResult(success=False, handled=False,
                          message=f"535 5.7.8 You said AUTH {mechanism} {said} ({password.decode()})")


@pytest.fixture(params=["PLAIN", "LOGIN"])
def echoing_server(request):
    from aiosmtpd.controller import Controller
    from tests.servers import free_ports
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[request.param]
    controller = Controller(object(), hostname="127.0.0.1", port=free_ports(1)[0], authenticator=_EchoingAuth(),
                            auth_require_tls=False, auth_exclude_mechanism=[other])
    controller.start()
    yield controller.port
    controller.stop()


def test_every_form_of_the_password_is_masked_when_the_server_echoes_the_auth_exchange(echoing_server, caplog):
    from base64 import b64encode
    caplog.set_level(logging.DEBUG)
    user, password = "rita@northwind.example", "Echoed-Secret-91"
    settings = SmtpSettings("127.0.0.1", echoing_server, "none", user, password)
    report = smtp.test_identity(settings, LOCAL)
    assert report.error.kind == "auth" and "You said AUTH" in str(report.error)
    with pytest.raises(MailError) as caught:
        smtp.send(settings, LOCAL, new_message(), ["bob@example.net"])
    ours = [r.getMessage() for r in caplog.records if r.name != "mail.log"]  # mail.log: aiosmtpd's own
    texts = " ".join([str(report.error), repr(report), str(caught.value), *ours])
    forms = [password, b64encode(f"\0{user}\0{password}".encode()).decode(), b64encode(password.encode()).decode(),
             b64encode(user.encode()).decode()]
    assert [form for form in forms if form in texts] == []
