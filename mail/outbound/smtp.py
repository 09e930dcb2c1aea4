"""SMTP for sending identities: test the settings step by step, and send one message.

Connections go through mail.guard like POP3 ones, and failures become MailError.
"""
from __future__ import annotations

import hmac
import logging
import smtplib
import socket
from email.message import EmailMessage

from mail import errors, guard, sasl
from mail.errors import MailError, TestReport
from mail.guard import GuardPolicy, describe_tls, peer, tls_context, wrap_tls
from mail.servers import SECURITY_CHOICES, TIMEOUT_S, Progress, ServerSettings, run_test  # noqa: F401  (API)

DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
# smtplib would call socket.getfqdn(), which can stall on reverse DNS; submission servers
# accept the plain machine name.
EHLO_NAME = socket.gethostname() or "localhost"

log = logging.getLogger(__name__)


SmtpSettings = ServerSettings  # one settings type for POP3 and SMTP (mail.servers)


class _Utf8(str):
    """A SASL response that smtplib's .encode("ascii") sends as UTF-8 (RFC 4616): a password
    with non-ASCII characters signs in instead of raising UnicodeEncodeError."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return str.encode(self, "utf-8", errors)


class _Utf8Auth:
    def auth(self, mechanism, authobject, *, initial_response_ok=True):
        def utf8(challenge=None):
            response = authobject(challenge)
            return None if response is None else _Utf8(response)

        return super().auth(mechanism, utf8, initial_response_ok=initial_response_ok)

    def auth_cram_md5(self, challenge=None):
        if challenge is None:  # CRAM-MD5 has no initial response
            return None
        return self.user + " " + hmac.HMAC(self.password.encode("utf-8"), challenge, "md5").hexdigest()


class _Smtp(_Utf8Auth, smtplib.SMTP):
    def __init__(self, settings: SmtpSettings, policy: GuardPolicy, progress: Progress) -> None:
        self._policy = policy
        self._progress = progress
        super().__init__(local_hostname=EHLO_NAME, timeout=settings.timeout_s)
        self._host = guard.normalize_host(settings.host)  # smtplib sets it only in __init__(host)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return guard.connect(host, port, self._policy, timeout)


class _SmtpSSL(_Utf8Auth, smtplib.SMTP_SSL):
    def __init__(self, settings: SmtpSettings, policy: GuardPolicy, progress: Progress) -> None:
        self._policy = policy
        self._progress = progress
        super().__init__(local_hostname=EHLO_NAME, timeout=settings.timeout_s,
                         context=tls_context(settings.cafile))
        self._host = guard.normalize_host(settings.host)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = guard.connect(host, port, self._policy, timeout)
        self._progress("Connected", peer(sock, port))
        return wrap_tls(self.context, sock, self._host)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _to_mail_error(exc: BaseException, settings: SmtpSettings) -> MailError:
    """Map an smtplib, socket or TLS exception to a MailError; anything else is re-raised."""
    password = settings.secrets
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return errors.auth(f"{exc.smtp_code} {_text(exc.smtp_error)}", password)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib turns a timeout while reading a reply into "Connection unexpectedly closed".
        cause = exc.__context__
        if isinstance(cause, OSError):
            return errors.from_os_error(cause, settings.host, settings.port, settings.timeout_s)
        return errors.closed()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{rcpt} ({code} {_text(msg)})"
                            for rcpt, (code, msg) in exc.recipients.items())
        text = f"The server refused the recipients: {errors.redact(refused, password)}"
        return MailError("protocol", errors.sentence(text))
    if isinstance(exc, smtplib.SMTPSenderRefused):
        reply = errors.redact(f"{exc.smtp_code} {_text(exc.smtp_error)}", password)
        text = f"The server refused the sender {exc.sender}: {reply}"
        return MailError("protocol", errors.sentence(text))
    if isinstance(exc, smtplib.SMTPResponseException):
        return errors.protocol(f"{exc.smtp_code} {_text(exc.smtp_error)}", password)
    if isinstance(exc, smtplib.SMTPException):
        return errors.protocol(str(exc), password)
    if isinstance(exc, OSError):
        return errors.from_os_error(exc, settings.host, settings.port, settings.timeout_s)
    raise exc


def _open(settings: SmtpSettings, policy: GuardPolicy, progress: Progress) -> smtplib.SMTP:
    """Connect, greet, secure and sign in (if a username is set). Raises MailError."""
    if settings.security not in SECURITY_CHOICES:
        raise ValueError(f"security must be one of {SECURITY_CHOICES}")
    host = guard.normalize_host(settings.host)
    client = (_SmtpSSL if settings.security == "ssl" else _Smtp)(settings, policy, progress)
    try:
        code, reply = client.connect(host, settings.port)
        if code == -1:  # smtplib's code for a greeting it could not parse
            raise MailError("protocol", f"The server on port {settings.port} did not answer "
                                        "like a mail (SMTP) server.")
        if code != 220:
            raise errors.protocol(f"{code} {_text(reply)}", settings.secrets)
        if settings.security == "ssl":
            progress("TLS established", describe_tls(client.sock, host))
        else:
            progress("Connected", peer(client.sock, settings.port))
        client.ehlo_or_helo_if_needed()
        progress("EHLO", (_text(client.ehlo_resp or client.helo_resp or b"").splitlines() or [""])[0])
        if settings.security == "starttls":
            if not client.has_extn("starttls"):
                raise MailError("tls", f"The server does not offer STARTTLS on port {settings.port}; "
                                       "choose SSL/TLS or no encryption.")
            client.starttls(context=tls_context(settings.cafile))
            progress("TLS established", describe_tls(client.sock, host))
            client.ehlo()
        if settings.username:
            if not client.has_extn("auth"):
                raise MailError("auth", "The server does not offer sign-in on this connection; "
                                        "check the security setting and port.")
            if settings.oauth:  # XOAUTH2 in two steps, the token never in smtplib's debug output
                sasl.smtp_xoauth2(client, settings.username, settings.password)
            else:
                client.login(settings.username, settings.password)
            progress("Signed in", f"as {settings.username}")
    except Exception as exc:
        client.close()
        if isinstance(exc, MailError):
            raise
        raise _to_mail_error(exc, settings) from exc
    return client


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye politely; a failed QUIT changes nothing once the work is done."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def test_identity(settings: SmtpSettings, policy: GuardPolicy) -> TestReport:
    """Connect, greet, secure and sign in, reporting each step; failures end up in report.error.

    Raises only ValueError for an unknown security setting.
    """
    steps = {"ssl": ["Connected", "TLS established", "EHLO"],
             "starttls": ["Connected", "EHLO", "TLS established"],
             "none": ["Connected", "EHLO"]}.get(settings.security, [])
    steps += ["Signed in"] if settings.username else []
    return run_test("SMTP", settings, policy, steps,
                    lambda progress, report: _quit(_open(settings, policy, progress)))


test_identity.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def check_headers(message: EmailMessage) -> None:
    """Refuse a message whose header names or values hold CR or LF (header injection).

    Checks every MIME part. Raises MailError('protocol').
    """
    for part in message.walk():
        for name, value in part.raw_items():
            if any(c in f"{name}{value}" for c in "\r\n"):
                raise MailError("protocol", f"The {name.strip()} header contains a line break, "
                                            "so the message was not sent.")


def send(settings: SmtpSettings, policy: GuardPolicy, message: EmailMessage,
         recipients: list[str]) -> None:
    """Send message to recipients (the envelope; Bcc headers are dropped by smtplib).

    Raises MailError: 'protocol' for a header with a line break, no recipients or a
    refusal by the server, and any connection, TLS or sign-in kind.
    """
    check_headers(message)
    if not recipients or any(not r or any(c in r for c in "\r\n") for r in recipients):
        raise MailError("protocol", "The recipient list is empty or contains a line break, "
                                    "so the message was not sent.")
    if not (message["Sender"] or message["From"]):
        raise MailError("protocol", "The message has no From address, so it was not sent.")
    client = _open(settings, policy, lambda label, detail: None)
    try:
        refused = client.send_message(message, to_addrs=list(recipients))
    except ValueError as exc:  # the email package cannot write it, e.g. two Sender headers
        client.close()
        text = f"The message could not be sent: {errors.sentence(str(exc))}"
        raise MailError("protocol", text) from exc
    except Exception as exc:
        client.close()
        raise _to_mail_error(exc, settings) from exc
    _quit(client)
    if refused:
        names = ", ".join(refused)
        raise MailError("protocol", f"The server did not accept {names}; the message went to "
                                    "the other recipients.")
    log.info("Sent a message through %s port %d to %d recipients", settings.host,
             settings.port, len(recipients))
