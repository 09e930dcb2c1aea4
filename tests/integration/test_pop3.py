"""POP3 against a real Dovecot and against loopback fault servers."""
import logging
import time
from contextlib import contextmanager

import pytest

from mail import guard
from mail.inbound import pop3
from mail.errors import NO_UIDL_SENTENCE, MailError, human_size
from mail.guard import GuardPolicy
from mail.inbound.fetch import FetchSession
from mail.inbound.pop3 import Pop3Session, Pop3Settings, Step
from tests.servers import NO_UIDL_REPLIES, FakePop3Server

LOCAL = GuardPolicy(allow_local=True)
FAST_TIMEOUT_S = 1
LONG_LINE = b"x" * 30_000


@contextmanager
def session_for(settings: Pop3Settings):
    """A signed-in session used as a poll uses one: only an explicit quit() commits DELE."""
    session = FetchSession.open(settings, LOCAL)
    try:
        yield session
    finally:
        session.close()


def message(subject: str, body: bytes = b"Hello.\r\n") -> bytes:
    head = (f"From: Ann Example <ann@example.com>\r\nTo: bob@example.com\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject}@example.com>\r\n\r\n")
    return head.encode() + body


def settings_for(server, user: str, password: str, security: str = "none", **changes) -> Pop3Settings:
    port = server.ssl_port if security == "ssl" else server.port
    values = dict(host=server.host, port=port, security=security, username=user,
                  password=password, cafile=getattr(server, "cafile", None))
    values.update(changes)
    return Pop3Settings(**values)


@pytest.fixture
def account(dovecot):
    return dovecot.new_user("pop")


def labels(report) -> list[tuple[str, bool]]:
    return [(step.label, step.ok) for step in report.steps]


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_account_reports_each_step_and_the_mailbox(dovecot, account, security):
    raws = [message(f"hello-{n}") for n in range(3)]
    for raw in raws:
        dovecot.deliver(account[0], raw)

    report = pop3.test_account(settings_for(dovecot, *account, security), LOCAL)

    assert report.ok and report.error is None and report.warning is None
    expected = ["Name resolved", "Connected", "TLS established", "Signed in", "Mailbox"]
    if security == "none":
        expected.remove("TLS established")
    assert labels(report) == [(label, True) for label in expected]
    assert report.steps[0].detail == "127.0.0.1"
    if security != "none":
        assert report.steps[2].detail.startswith("TLSv1.")
    assert (report.message_count, report.mailbox_bytes) == (3, sum(map(len, raws)))
    assert report.uidl_supported is True
    assert report.summary == f"3 messages, {human_size(sum(map(len, raws)))}; UIDL supported"
    assert report.steps[-1].detail == report.summary


def test_wrong_password_reports_server_reply(dovecot, account):
    wrong = "Wrong-Secret-123"
    report = pop3.test_account(settings_for(dovecot, account[0], wrong), LOCAL)

    assert not report.ok and report.error.kind == "auth"
    assert str(report.error) == ("The server rejected the username or password: "
                                 "-ERR [AUTH] Authentication failed.")
    assert labels(report) == [("Name resolved", True), ("Connected", True), ("Signed in", False)]
    assert report.steps[-1].detail == str(report.error)
    assert wrong not in str(report)


def test_session_open_with_wrong_password_raises_auth(dovecot, account):
    with pytest.raises(MailError) as caught:
        Pop3Session.open(settings_for(dovecot, account[0], "nope", "ssl"), LOCAL)
    assert caught.value.kind == "auth"


def test_unresolvable_host_reports_name_not_found(account):
    settings = Pop3Settings("mail.example.invalid", 995, "ssl", *account)
    report = pop3.test_account(settings, LOCAL)
    assert report.error.kind == "host_not_found"
    assert report.steps == [Step("Name resolved", False,
                                 "The server name mail.example.invalid could not be found.")]


def test_closed_port_reports_refused(closed_port, account):
    settings = Pop3Settings("127.0.0.1", closed_port, "none", *account)
    report = pop3.test_account(settings, LOCAL)
    assert report.error.kind == "refused"
    assert str(report.error) == f"The server refused the connection on port {closed_port}."
    assert labels(report) == [("Name resolved", True), ("Connected", False)]


@pytest.mark.parametrize("security", ["none", "ssl"])
def test_silent_server_times_out_within_the_configured_timeout(silent_server, account, security):
    settings = Pop3Settings("127.0.0.1", silent_server, security, *account, timeout_s=FAST_TIMEOUT_S)
    started = time.monotonic()
    report = pop3.test_account(settings, LOCAL)
    assert time.monotonic() - started < FAST_TIMEOUT_S + 1
    assert report.error.kind == "timeout"
    assert str(report.error) == "The server did not answer within 1 second."
    assert report.steps[-1].ok is False


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_certificate_for_another_host_is_refused(dovecot, account, security):
    settings = settings_for(dovecot, *account, security, host=dovecot.wrong_host)
    report = pop3.test_account(settings, LOCAL)
    assert report.error.kind == "certificate"
    assert str(report.error) == ("The server's certificate is not valid for 127.0.0.2: "
                                 "it was issued for another address.")
    assert labels(report)[-2:] == [("Connected", True), ("TLS established", False)]


def test_self_signed_certificate_is_refused_without_its_ca(dovecot, account):
    report = pop3.test_account(settings_for(dovecot, *account, "ssl", cafile=None), LOCAL)
    assert report.error.kind == "certificate"
    assert str(report.error).endswith(": it is self-signed.")


def test_ssl_setting_on_the_plain_port_reports_a_tls_failure(dovecot, account):
    report = pop3.test_account(settings_for(dovecot, *account, "ssl", port=dovecot.port), LOCAL)
    assert report.error.kind == "tls"
    assert "check that the security setting matches the port" in str(report.error)


def test_server_without_uidl_passes_with_a_warning(no_uidl_server):
    report = pop3.test_account(settings_for(no_uidl_server, "ann", "pw"), LOCAL)
    assert report.ok and report.error is None
    assert report.warning == NO_UIDL_SENTENCE
    assert report.uidl_supported is False
    assert report.summary == "2 messages, 320 bytes; UIDL not supported"


def test_session_uidl_on_server_without_it_raises_no_uidl(no_uidl_server):
    with session_for(settings_for(no_uidl_server, "ann", "pw")) as session:
        with pytest.raises(MailError) as caught:
            session.uidl()
        assert caught.value.kind == "no_uidl"
        assert session.sizes() == {1: 160, 2: 160}


def test_guard_refuses_loopback_unless_local_servers_are_allowed(dovecot, account):
    report = pop3.test_account(settings_for(dovecot, *account), GuardPolicy())
    assert report.error.kind == "destination"
    assert labels(report) == [("Name resolved", False)]
    with pytest.raises(MailError, match="^This server is not allowed: "):
        Pop3Session.open(settings_for(dovecot, *account), GuardPolicy())


def test_a_refused_hosts_report_never_shows_what_it_resolves_to(account):
    report = pop3.test_account(Pop3Settings("localhost", 995, "ssl", *account), GuardPolicy())
    assert report.error.kind == "destination"
    shown = " ".join(f"{step.label} {step.detail}" for step in report.steps) + str(report.error)
    assert "127.0.0.1" not in shown and "::1" not in shown


def test_refusal_is_identical_for_open_and_closed_ports(silent_server, closed_port):
    sentences = []
    for port in (silent_server, closed_port):
        with pytest.raises(MailError) as caught:
            guard.connect("127.0.0.1", port, GuardPolicy(), timeout_s=FAST_TIMEOUT_S)
        sentences.append(str(caught.value))
    assert sentences[0] == sentences[1]


def test_retr_returns_each_message_byte_for_byte(dovecot, account):
    raws = [
        message("plain"),
        message("long-line", b"Start\r\n" + LONG_LINE + b"\r\nEnd\r\n"),
        message("dots", b".starts with a dot\r\n..two dots\r\n.\r\nlast\r\n"),
        message("blank-lines", b"\r\n\r\nafter blank lines\r\n\r\n"),
    ]
    for raw in raws:
        dovecot.deliver(account[0], raw)

    with session_for(settings_for(dovecot, *account, "ssl")) as session:
        fetched = [bytes(session.retr_buffer(n)) for n in session.uidl()]
        sizes = session.sizes()

    assert sorted(fetched) == sorted(raws)
    assert sorted(sizes.values()) == sorted(map(len, raws))


def test_top_returns_headers_without_the_body(dovecot, account):
    dovecot.deliver(account[0], message("top", b"secret body line\r\n"))
    with session_for(settings_for(dovecot, *account)) as session:
        head = session.top(1, 0)
    assert b"Subject: top\r\n" in head and head.endswith(b"\r\n")
    assert b"secret body line" not in head


def test_dele_then_quit_removes_the_message(dovecot, account):
    dovecot.deliver(account[0], message("keep"))
    dovecot.deliver(account[0], message("delete"))
    with session_for(settings_for(dovecot, *account)) as session:
        number = next(n for n in session.uidl() if b"delete" in session.top(n, 0))
        session.dele(number)
        assert session.stat()[0] == 1
        session.quit()
    assert dovecot.count(account[0]) == 1
    with session_for(settings_for(dovecot, *account)) as session:
        assert b"Subject: keep" in bytes(session.retr_buffer(1))


def test_leaving_the_session_by_an_exception_keeps_deleted_messages(dovecot, account):
    dovecot.deliver(account[0], message("survivor"))
    with pytest.raises(RuntimeError):
        with session_for(settings_for(dovecot, *account)) as session:
            session.dele(1)
            raise RuntimeError("the database commit failed")
    assert dovecot.count(account[0]) == 1


def test_uidl_is_stable_across_sessions(dovecot, account):
    for n in range(3):
        dovecot.deliver(account[0], message(f"stable-{n}"))
    with session_for(settings_for(dovecot, *account)) as session:
        first = session.uidl()
    with session_for(settings_for(dovecot, *account, "starttls")) as session:
        assert session.uidl() == first
    assert len(set(first.values())) == 3


def test_server_echoing_the_password_is_redacted():
    password = "Echo-Secret-987"
    replies = {"USER": b"+OK", "PASS": lambda arg: b"-ERR [AUTH] wrong password " + arg}
    with FakePop3Server(replies) as server:
        report = pop3.test_account(settings_for(server, "ann", password), LOCAL)
    assert report.error.kind == "auth"
    assert password not in str(report.error) and "********" in str(report.error)


def test_password_never_appears_in_errors_reports_or_logs(dovecot, account, silent_server,
                                                          closed_port, caplog):
    caplog.set_level(logging.DEBUG)
    password = "Never-Show-This-42"
    cases = [
        settings_for(dovecot, account[0], password),
        settings_for(dovecot, account[0], password, "ssl", host=dovecot.wrong_host),
        Pop3Settings("127.0.0.1", silent_server, "none", "ann", password, timeout_s=0.2),
        Pop3Settings("127.0.0.1", closed_port, "ssl", "ann", password),
        Pop3Settings("mail.example.invalid", 995, "ssl", "ann", password),
    ]
    texts = [repr(cases[0])]
    for settings in cases:
        report = pop3.test_account(settings, LOCAL)
        assert not report.ok
        texts += [str(report.error), repr(report.error), repr(report)]
    with pytest.raises(MailError) as caught:
        Pop3Session.open(cases[0], LOCAL)
    texts += [str(caught.value), repr(caught.value), repr(caught.value.__cause__)]
    assert not any(password in text for text in texts)
    assert password not in caplog.text


def test_stopped_server_reports_refused_and_recovers_after_start(dovecot, account):
    settings = settings_for(dovecot, *account)
    dovecot.stop()
    try:
        assert pop3.test_account(settings, LOCAL).error.kind == "refused"
    finally:
        dovecot.start()
    assert pop3.test_account(settings, LOCAL).ok


def test_changed_password_applies_at_the_next_login(dovecot, account):
    user, old = account
    assert pop3.test_account(settings_for(dovecot, user, old), LOCAL).ok
    dovecot.add_user(user, "changed-password")
    assert pop3.test_account(settings_for(dovecot, user, "changed-password"), LOCAL).ok
    assert pop3.test_account(settings_for(dovecot, user, old), LOCAL).error.kind == "auth"


@pytest.mark.parametrize("command, reply", [
    ("STAT", b"+OK lots"),
    ("UIDL", b"+OK\r\nnot-a-number abc\r\n."),
    ("PASS", b"-ERR [IN-USE] Mailbox is locked by another session."),
])
def test_malformed_or_unexpected_replies_end_up_in_the_report(command, reply):
    with FakePop3Server({**NO_UIDL_REPLIES, command: reply}) as server:
        report = pop3.test_account(settings_for(server, "ann", "pw"), LOCAL)
    assert not report.ok and report.error.kind == "protocol"
    assert report.steps[-1].detail == str(report.error)
