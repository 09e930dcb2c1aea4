"""SASL XOAUTH2 for POP3 and SMTP: the sign-in string and the two-step exchange.

The string is base64("user=" + address + "\\x01auth=Bearer " + token + "\\x01\\x01"). It is
always sent in two steps (AUTH XOAUTH2, wait for the server's "+", then the string): Microsoft
refuses it on the AUTH line, Google and Dovecot take both forms. A refused token comes back as
a challenge carrying base64 JSON ({"status": "401", ...}); the client answers it with an empty
line and then reads the refusal.

The token is a password: it is written straight to the socket (never through poplib's or
smtplib's debug output), and no exception or log line here ever contains it.
"""
from __future__ import annotations

import base64
import binascii
import json
import poplib
import smtplib

from mail.errors import MailError

MECHANISM = "XOAUTH2"
CRLF = b"\r\n"
# Most challenges a server may send before a client gives up (smtplib's own limit is 5).
MAX_CHALLENGES = 2

REFUSED_SENTENCE = "The mail server did not accept the sign-in for {user}"
# What a status in the error challenge means, in words (Google and Microsoft send 400/401).
_STATUS_REASONS = {
    "400": "the request was not understood",
    "401": "the access was refused or has expired",
    "403": "this mailbox does not allow this app",
}


class SaslRefused(MailError):
    """The server refused the XOAUTH2 sign-in. details is the decoded error challenge (may be
    empty); str() is a sentence for the user and never holds the token."""

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__("auth", message)
        self.details = details or {}


def xoauth2_bytes(user: str, token: str) -> bytes:
    """The raw (not yet base64) XOAUTH2 initial response."""
    if any(c in user + token for c in "\x01\r\n"):
        raise ValueError("the user and the token may not contain control characters")
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def xoauth2_string(user: str, token: str) -> str:
    """The XOAUTH2 initial response, base64-encoded, as sent after the server's "+"."""
    return base64.b64encode(xoauth2_bytes(user, token)).decode("ascii")


def decode_challenge(data: bytes | str) -> dict:
    """Decode a server's error challenge into a dict.

    Accepts the whole line ("+ eyJ...", "334 eyJ...") or only the base64 part. Returns {} for
    an empty challenge or one that is not base64 JSON (a server may say anything there).
    """
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    for prefix in ("+", "334"):
        if text.startswith(prefix):
            text = text[len(prefix):].strip()
            break
    if not text:
        return {}
    try:
        return json_details(base64.b64decode(text, validate=True))
    except binascii.Error:
        return {}


def json_details(raw: bytes) -> dict:
    """The decoded JSON object of an error challenge, or {} if it is not one."""
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def refused_sentence(user: str, details: dict) -> str:
    """The sentence for a refused sign-in, e.g. "The mail server did not accept the sign-in for
    ann@example.com: the access was refused or has expired (status 401)."."""
    text = REFUSED_SENTENCE.format(user=user)
    status = str(details.get("status", ""))
    if status:
        reason = _STATUS_REASONS.get(status, "it gave no reason")
        text += f": {reason} (status {status[:8]})"
    return text + "."


def pop3_xoauth2(pop: poplib.POP3, user: str, token: str) -> bytes:
    """Sign in on an open POP3 connection with AUTH XOAUTH2 in two steps.

    Returns the server's +OK line. Raises SaslRefused with a sentence if the server refuses
    the token, or MailError('protocol') if it does not take AUTH XOAUTH2 at all.
    poplib has no AUTH command: this speaks the exchange over poplib's own socket and reader.
    """
    pop._putcmd(f"AUTH {MECHANISM}")
    first = _pop_line(pop)
    if first.startswith(b"-"):
        raise MailError("protocol", "This mail server does not offer sign-in with XOAUTH2.")
    if not _is_continuation(first):
        raise MailError("protocol", "The mail server answered AUTH XOAUTH2 unexpectedly.")
    pop.sock.sendall(xoauth2_string(user, token).encode("ascii") + CRLF)
    reply = _pop_line(pop)
    details: dict = {}
    challenges = 0
    while _is_continuation(reply):
        challenges += 1
        details = decode_challenge(reply) or details
        # An empty line ends the exchange; the server then sends its -ERR.
        pop.sock.sendall(b"*" + CRLF if challenges > MAX_CHALLENGES else CRLF)
        reply = _pop_line(pop)
    if reply.startswith(b"+OK"):
        return reply
    raise SaslRefused(refused_sentence(user, details), details)


def smtp_xoauth2(smtp: smtplib.SMTP, user: str, token: str) -> tuple[int, bytes]:
    """Sign in on an open SMTP connection (after EHLO and STARTTLS) with AUTH XOAUTH2 in two steps.

    Returns smtplib's (code, reply). Raises SaslRefused with a sentence if the server refuses
    the token. smtplib.auth sends the initial response on the AUTH line unless told not to;
    initial_response_ok=False makes it wait for the 334 first.
    """
    answer = _SmtpXoauth2(user, token)
    debuglevel, smtp.debuglevel = smtp.debuglevel, 0  # smtplib's debug output would print the string
    try:
        return smtp.auth(MECHANISM, answer, initial_response_ok=False)
    except smtplib.SMTPAuthenticationError:
        raise SaslRefused(refused_sentence(user, answer.details), answer.details) from None
    finally:
        smtp.debuglevel = debuglevel


class _SmtpXoauth2:
    """smtplib's authobject: the string for the first (empty) challenge, an empty answer to
    the error challenge, whose JSON it keeps."""

    def __init__(self, user: str, token: str) -> None:
        self._user, self._token = user, token
        self.details: dict = {}
        self.calls = 0

    def __call__(self, challenge: bytes | None = None) -> str:
        self.calls += 1
        if self.calls == 1:
            return xoauth2_bytes(self._user, self._token).decode()
        self.details = json_details(challenge or b"") or self.details
        return ""

    def __repr__(self) -> str:  # never show the token, even in a traceback's locals
        return f"<XOAUTH2 answer for {self._user}>"


def _pop_line(pop: poplib.POP3) -> bytes:
    line, _ = pop._getline()
    return line


def _is_continuation(line: bytes) -> bool:
    return line == b"+" or line.startswith(b"+ ")
