"""One exception type for every mail failure, carrying a sentence a user understands.

Views catch only MailError and show str(error) inline; `kind` lets them pick an icon or a
hint. The helpers below are the only place the sentences are worded, so POP3 and SMTP say
the same thing for the same failure. TestReport is how a settings test (POP3 or SMTP)
tells the user which step failed and why.
"""
from __future__ import annotations

import base64
import socket
import ssl
from dataclasses import dataclass, field

KINDS = frozenset({
    "host_not_found", "refused", "timeout", "certificate", "auth", "no_uidl",
    "destination", "protocol", "tls", "network",
})

NO_UIDL_SENTENCE = ("This server does not support UIDL, so Leave messages in the server "
                    "cannot avoid fetching messages twice.")

# Why a certificate failed, by OpenSSL verify code: the raw messages are written for
# programmers ("unable to get local issuer certificate").
_CERT_REASONS = {
    9: "it is not valid yet",
    10: "it has expired",
    18: "it is self-signed",
    19: "it is signed by an unknown authority",
    20: "it is signed by an unknown authority",
    21: "it is signed by an unknown authority",
    62: "it was issued for another host name",
    64: "it was issued for another address",
}


class MailError(Exception):
    """A mail server or network failure, worded for the user; never contains a password."""

    def __init__(self, kind: str, message: str, *, plain: str = "", reply: str = "") -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown MailError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        # For a page: the plain sentence alone, and the server's own words (redacted) apart from it.
        self.plain = plain or message
        self.reply = reply

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"MailError({self.kind!r}, {self.message!r})"


@dataclass
class Step:
    """One line of a test report: what was tried, whether it worked, and the detail
    (an address, a TLS version, or the failure's sentence)."""

    label: str
    ok: bool
    detail: str = ""


@dataclass
class TestReport:
    """Outcome of testing mail settings (POP3 account or SMTP identity): the steps done,
    the first failure if any, and for POP3 what the mailbox holds."""

    __test__ = False  # a result, not a pytest test class, despite its name

    ok: bool = False
    steps: list[Step] = field(default_factory=list)
    error: MailError | None = None
    message_count: int | None = None
    mailbox_bytes: int | None = None
    uidl_supported: bool | None = None
    warning: str | None = None
    unencrypted: bool = False  # Security "None": the password crosses the network readable

    @property
    def summary(self) -> str:
        """Return e.g. '1,234 messages, 56 MB; UIDL supported', or '' before STAT."""
        if self.message_count is None or self.mailbox_bytes is None:
            return ""
        noun = "message" if self.message_count == 1 else "messages"
        text = f"{self.message_count:,} {noun}, {human_size(self.mailbox_bytes)}"
        if self.uidl_supported is not None:
            text += "; UIDL supported" if self.uidl_supported else "; UIDL not supported"
        return text


def human_size(size: int) -> str:
    """Return a size as '512 bytes', '1.5 KB', '56 MB' or '2.1 GB' (units of 1,024)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size:,} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    number = f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:,.0f}"
    return f"{number} {unit}"


def counted(count: int, noun: str) -> str:
    """`count` and `noun` in the right number: "1 email", "3 emails", "1,200 recipients"."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def sentence(text: str) -> str:
    """Return text stripped and ending with a full stop (server replies often lack one)."""
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def credential_forms(username: str, secret: str) -> tuple[str, ...]:
    """Every form the secret (a password or an OAuth token) takes in a protocol exchange.

    In clear (USER/PASS), base64 of AUTH PLAIN's authzid\\0user\\0secret (with and without an
    authzid), base64 of AUTH LOGIN's username and password, and the XOAUTH2 string, so that a
    server echoing what it got can be masked whichever way the secret went out.
    """
    if not secret:
        return ()
    def b64(text: str) -> str:
        return base64.b64encode(text.encode("utf-8", "surrogateescape")).decode("ascii")
    forms = [secret, b64(secret), b64(f"\0{username}\0{secret}"), b64(f"{username}\0{username}\0{secret}"),
             b64(f"user={username}\x01auth=Bearer {secret}\x01\x01")]
    if username:
        forms.append(b64(username))
    # Longest first: masking the secret alone first would break the longer forms that hold it.
    return tuple(sorted(dict.fromkeys(forms), key=len, reverse=True))


def redact(text: str, secrets: str | tuple[str, ...]) -> str:
    """Return text with every occurrence of the secret(s) masked (a server may echo what it got)."""
    for secret in (secrets,) if isinstance(secrets, str) else secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


def seconds(value: float) -> str:
    """Return '1 second', '10 seconds' or '2.5 seconds'."""
    number = f"{value:g}"
    return f"{number} second" if number == "1" else f"{number} seconds"


def host_not_found(host: str) -> MailError:
    return MailError("host_not_found", f"The server name {host} could not be found.")


def refused(port: int) -> MailError:
    return MailError("refused", f"The server refused the connection on port {port}.")


def timeout(timeout_s: float) -> MailError:
    return MailError("timeout", f"The server did not answer within {seconds(timeout_s)}.")


def unreachable(host: str, reason: str) -> MailError:
    return MailError("network", f"The server {host} could not be reached: {sentence(reason.lower())}")


def certificate(host: str, exc: ssl.SSLCertVerificationError) -> MailError:
    why = _CERT_REASONS.get(exc.verify_code) or sentence(exc.verify_message or str(exc))
    return MailError("certificate", f"The server's certificate is not valid for {host}: {sentence(why)}")


def tls(host: str, port: int, reason: str) -> MailError:
    return MailError("tls", f"The secure connection to {host} on port {port} failed ({reason}); "
                            "check that the security setting matches the port.")


def auth(reply: str, secrets: str | tuple[str, ...]) -> MailError:
    reply = sentence(redact(reply, secrets))
    return MailError("auth", f"The server rejected the username or password: {reply}",
                     plain="The server rejected the username or password.", reply=reply)


def protocol(reply: str, secrets: str | tuple[str, ...] = "") -> MailError:
    reply = sentence(redact(reply, secrets))
    return MailError("protocol", f"The server gave an unexpected answer: {reply}",
                     plain="The server gave an unexpected answer.", reply=reply)


def closed() -> MailError:
    return MailError("protocol", "The server closed the connection unexpectedly.")


def unreadable() -> MailError:
    return MailError("protocol", "The server gave an answer that could not be understood.")


def no_uidl() -> MailError:
    return MailError("no_uidl", NO_UIDL_SENTENCE)


def from_os_error(exc: OSError, host: str, port: int, timeout_s: float) -> MailError:
    """Map a socket or TLS failure to a MailError; TLS is checked first as SSLError is an OSError."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return certificate(host, exc)
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        return tls(host, port, "the server closed the secure connection")
    if isinstance(exc, ssl.SSLError):
        return tls(host, port, (exc.reason or str(exc)).replace("_", " ").lower())
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return timeout(timeout_s)
    if isinstance(exc, ConnectionRefusedError):
        return refused(port)
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return closed()
    return unreachable(host, exc.strerror or str(exc) or type(exc).__name__)
