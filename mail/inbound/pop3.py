"""POP3 for mail accounts: test an account step by step, and a signed-in session to fetch.

Every connection goes through mail.guard, and every failure becomes a MailError with a
sentence for the user. The password never appears in a sentence, a repr or a log line.
"""
from __future__ import annotations

import logging
import poplib
import socket
from typing import Any, Callable

from mail import errors, guard, sasl
from mail.errors import MailError, Step, TestReport
from mail.guard import GuardPolicy, describe_tls, peer, tls_context, wrap_tls
from mail.servers import SECURITY_CHOICES, TIMEOUT_S, Progress, ServerSettings, run_test  # noqa: F401  (API)

DEFAULT_PORTS = {"ssl": 995, "starttls": 110, "none": 110}
# poplib gives up at 2,048 bytes a line, but real mail has 24 KB lines. This bound only
# stops a hostile server from filling memory with one endless line.
MAX_LINE_BYTES = 64 * 1024 * 1024

# Dovecot and others tag a refused login that is not about the password (RFC 2449, 3206).
_NOT_CREDENTIAL_CODES = ("[IN-USE]", "[SYS/", "[LOGIN-DELAY]")

Pop3Settings = ServerSettings  # one settings type for POP3 and SMTP (mail.servers)
log = logging.getLogger(__name__)


def _no_progress(label: str, detail: str) -> None:
    return None


class _GuardedMixin:
    """Connects through guard.connect and reads lines of any real-world length."""

    host: str
    port: int
    file: Any

    def _setup(self, policy: GuardPolicy, progress: Progress) -> None:
        self._policy = policy
        self._progress = progress

    def _connect_tcp(self, timeout: float) -> socket.socket:
        return guard.connect(self.host, self.port, self._policy, timeout)

    def _getline(self) -> tuple[bytes, int]:
        line = self.file.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES:
            raise poplib.error_proto("-ERR line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        if line.endswith(b"\r\n"):
            return line[:-2], len(line)
        return (line[:-1] if line.endswith(b"\n") else line), len(line)


class _Pop3(_GuardedMixin, poplib.POP3):
    def __init__(self, settings: Pop3Settings, policy: GuardPolicy, progress: Progress) -> None:
        self._setup(policy, progress)
        try:
            poplib.POP3.__init__(self, guard.normalize_host(settings.host), settings.port,
                                 timeout=settings.timeout_s)
        except BaseException:
            _discard(self)  # poplib leaves the socket open when the greeting fails
            raise

    def _create_socket(self, timeout: float) -> socket.socket:
        return self._connect_tcp(timeout)


class _Pop3SSL(_GuardedMixin, poplib.POP3_SSL):
    def __init__(self, settings: Pop3Settings, policy: GuardPolicy, progress: Progress) -> None:
        self._setup(policy, progress)
        try:
            poplib.POP3_SSL.__init__(self, guard.normalize_host(settings.host), settings.port,
                                     timeout=settings.timeout_s, context=tls_context(settings.cafile))
        except BaseException:
            _discard(self)
            raise

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = self._connect_tcp(timeout)
        self._progress("Connected", peer(sock, self.port))
        return wrap_tls(self.context, sock, self.host)


def _discard(client: poplib.POP3) -> None:
    """Drop the connection without QUIT: the server then keeps every message."""
    for name in ("file", "sock"):
        obj = getattr(client, name, None)
        setattr(client, name, None)
        if obj is not None:
            try:
                obj.close()
            except OSError:
                pass


def _reply(exc: poplib.error_proto) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _to_mail_error(exc: BaseException, settings: Pop3Settings) -> MailError:
    """Map a poplib, socket or TLS exception to a MailError; anything else is re-raised."""
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, poplib.error_proto):
        reply = _reply(exc)
        return errors.closed() if reply == "-ERR EOF" else errors.protocol(reply, settings.secrets)
    if isinstance(exc, OSError):
        return errors.from_os_error(exc, settings.host, settings.port, settings.timeout_s)
    if isinstance(exc, (ValueError, IndexError)):  # poplib parsing a malformed reply
        return errors.unreadable()
    raise exc


def _starttls(client: poplib.POP3, settings: Pop3Settings, progress: Progress) -> None:
    try:
        offered = "STLS" in client.capa()
    except poplib.error_proto:
        offered = False  # no CAPA at all: certainly no STLS
    if not offered:
        raise MailError("tls", f"The server does not offer STARTTLS on port {settings.port}; "
                               "choose SSL/TLS or no encryption.")
    client.stls(tls_context(settings.cafile))
    progress("TLS established", describe_tls(client.sock, client.host))


def _login(client: poplib.POP3, settings: Pop3Settings, progress: Progress) -> None:
    if settings.oauth:
        _sign_in_xoauth2(client, settings)
        progress("Signed in", f"as {settings.username}")
        return
    if any(c in settings.username + settings.password for c in "\r\n"):
        raise MailError("auth", "The username or password contains a line break, which cannot be sent.")
    try:
        client.user(settings.username)
        client.pass_(settings.password)
    except poplib.error_proto as exc:
        reply = _reply(exc)
        if reply == "-ERR EOF":
            raise errors.closed() from None
        if any(code in reply for code in _NOT_CREDENTIAL_CODES):
            raise errors.protocol(reply, settings.secrets) from None
        raise errors.auth(reply, settings.secrets) from None
    progress("Signed in", f"as {settings.username}")


def _sign_in_xoauth2(client: poplib.POP3, settings: Pop3Settings) -> None:
    """AUTH XOAUTH2 with the access token, always in two steps (Microsoft refuses one line)."""
    try:
        sasl.pop3_xoauth2(client, settings.username, settings.password)
    except ValueError:
        raise MailError("auth", "The username contains a control character, which cannot be sent.") from None
    except poplib.error_proto as exc:
        reply = _reply(exc)
        if reply == "-ERR EOF":
            raise errors.closed() from None
        raise errors.protocol(reply, settings.secrets) from None


class Pop3Session:
    """A signed-in POP3 session: quit() sends QUIT, which commits DELE; close() only disconnects,
    so the server keeps every message."""

    def __init__(self, client: poplib.POP3, settings: Pop3Settings) -> None:
        self._client: poplib.POP3 | None = client
        self.settings = settings

    @classmethod
    def open(cls, settings: Pop3Settings, policy: GuardPolicy,
             progress: Progress = _no_progress) -> Pop3Session:
        """Connect, secure and sign in; progress(label, detail) hears each step done.

        Raises MailError for any network, TLS, server or sign-in failure.
        """
        if settings.security not in SECURITY_CHOICES:
            raise ValueError(f"security must be one of {SECURITY_CHOICES}")
        client: poplib.POP3 | None = None
        try:
            if settings.security == "ssl":
                client = _Pop3SSL(settings, policy, progress)
                progress("TLS established", describe_tls(client.sock, client.host))
            else:
                client = _Pop3(settings, policy, progress)
                progress("Connected", peer(client.sock, settings.port))
                if settings.security == "starttls":
                    _starttls(client, settings, progress)
            _login(client, settings, progress)
        except Exception as exc:
            if client is not None:
                _discard(client)
            if isinstance(exc, MailError):
                raise
            raise _to_mail_error(exc, settings) from exc
        return cls(client, settings)

    def _call(self, method: str, *args: Any, on_err: Callable[[], MailError] | None = None) -> Any:
        """Run a poplib method; on_err() makes the MailError for an -ERR reply. Raises MailError."""
        if self._client is None:
            raise MailError("protocol", "The connection to the server is already closed.")
        try:
            return getattr(self._client, method)(*args)
        except poplib.error_proto as exc:
            reply = _reply(exc)
            if on_err is not None and reply.startswith("-ERR") and reply != "-ERR EOF":
                raise on_err() from exc
            if reply == "-ERR EOF":
                self.close()
            raise _to_mail_error(exc, self.settings) from exc
        except (ValueError, IndexError) as exc:
            raise _to_mail_error(exc, self.settings) from exc
        except OSError as exc:
            self.close()  # a half-read reply would be taken as the answer to the next command
            raise _to_mail_error(exc, self.settings) from exc

    @staticmethod
    def _numbered(lines: list[bytes], value: Callable[[bytes], Any]) -> dict[int, Any]:
        """Parse 'number rest' lines of UIDL or LIST. Raises MailError('protocol')."""
        try:
            return {int(num): value(rest) for num, rest in (line.split(None, 1) for line in lines)}
        except (ValueError, IndexError):
            raise errors.unreadable() from None

    def stat(self) -> tuple[int, int]:
        """Return (message count, mailbox size in bytes). Raises MailError."""
        count, size = self._call("stat")
        return count, size

    def uidl(self) -> dict[int, str]:
        """Return {message number: unique id}. Raises MailError('no_uidl') if unsupported."""
        _, lines, _ = self._call("uidl", on_err=errors.no_uidl)
        return self._numbered(lines, lambda rest: rest.split()[0].decode("ascii", "replace"))

    def sizes(self) -> dict[int, int]:
        """Return {message number: size in bytes} from LIST. Raises MailError."""
        _, lines, _ = self._call("list")
        return self._numbered(lines, lambda rest: int(rest.split()[0]))

    def top(self, number: int, lines: int) -> bytes:
        """Return the headers and the first `lines` body lines of a message. Raises MailError."""
        _, got, _ = self._call("top", number, lines)
        return b"\r\n".join(got) + b"\r\n" if got else b""

    def dele(self, number: int) -> None:
        """Mark a message deleted; the server removes it only at quit(). Raises MailError."""
        self._call("dele", number)

    def quit(self) -> None:
        """Send QUIT, which commits deletions, and disconnect. Raises MailError."""
        client = self._client
        if client is None:
            return
        try:
            self._call("quit")
        finally:
            self._client = None
            _discard(client)

    def close(self) -> None:
        """Disconnect without QUIT: deletions are abandoned. Never raises."""
        client, self._client = self._client, None
        if client is not None:
            _discard(client)


def test_account(settings: Pop3Settings, policy: GuardPolicy) -> TestReport:
    """Run a real POP3 session and report each step; server failures end up in report.error.

    Raises only ValueError for an unknown security setting.
    """
    steps = ["Connected", "Signed in", "Mailbox"] if settings.security == "none" else [
        "Connected", "TLS established", "Signed in", "Mailbox"]

    def session(progress: Progress, report: TestReport) -> None:
        session = Pop3Session.open(settings, policy, progress)
        try:
            report.message_count, report.mailbox_bytes = session.stat()
            try:
                session.uidl()
                report.uidl_supported = True
            except MailError as exc:
                if exc.kind != "no_uidl":
                    raise
                report.uidl_supported, report.warning = False, str(exc)
            progress("Mailbox", report.summary)
        finally:
            session.close()  # a test changes nothing, so there is nothing for QUIT to commit

    return run_test("POP3", settings, policy, steps, session)


test_account.__test__ = False  # type: ignore[attr-defined]  # not a pytest test either
