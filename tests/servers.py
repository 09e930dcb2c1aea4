"""Real servers for the tests: Dovecot and GNU Mailutils pop3d (POP3), aiosmtpd (SMTP) and tiny
fault servers.

Everything listens on loopback, on free ports, and is cleaned up when the session ends.
Recipes: /work/shared/tooling.md. /etc/dovecot is never read.
"""
from __future__ import annotations

import itertools
import os
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = [
    "dovecot", "mailutils", "smtp_server", "silent_server", "no_uidl_server", "closed_port",
    "DovecotServer", "MailutilsServer", "SmtpServer", "FakePop3Server", "free_ports", "make_cert",
]

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
POP3D = shutil.which("pop3d") or "/usr/sbin/pop3d"
LOOPBACK = "127.0.0.1"
# Served by the same Dovecot, but not named in its certificate: the "certificate for
# another host" case, offline and without touching /etc/hosts.
OTHER_LOOPBACK = "127.0.0.2"
MAIL_UID = 65534  # Dovecot refuses mail access as root
START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 5

DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
instance_name = {instance}
protocols = pop3
listen = {listen}
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{d}/mail/%u
first_valid_uid = 1
# One passwd-file per user: Dovecot re-checks a passwd-file at most once a second, so a
# single shared file would hide a user added right after another user's login.
passdb {{
  driver = passwd-file
  args = {d}/users/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={d}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
  inet_listener pop3s {{
    port = {ssl_port}
    ssl = yes
  }}
}}
# Without this, one failed login from 127.0.0.1 delays every later login from it by 4-15 s.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def free_ports(count: int) -> list[int]:
    """Return count distinct free TCP ports on loopback (held together while choosing)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def make_cert(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed EC certificate for localhost and 127.0.0.1; return (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "3650", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def _make_base(prefix: str) -> Path:
    """Return a fresh temporary directory that Dovecot's unprivileged processes can enter."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    for parent in base.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o111)
    return base


class DovecotServer:
    """A private Dovecot: POP3 (with STARTTLS) on .port, POP3S on .ssl_port."""

    host = LOOPBACK
    wrong_host = OTHER_LOOPBACK

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port, self.ssl_port = free_ports(2)
        self.users: dict[str, str] = {}
        self.log_path = base / "dovecot.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._serial = itertools.count()
        for name in ("mail", "run", "state", "users"):
            (base / name).mkdir()
        os.chown(base / "mail", MAIL_UID, MAIL_UID)
        cert, _ = make_cert(base)
        self.cafile = str(cert)
        self.conf = base / "dovecot.conf"
        self.conf.write_text(DOVECOT_CONF.format(
            d=base, instance=f"dovecot-test-{base.name}", listen=f"{LOOPBACK}, {OTHER_LOOPBACK}",
            uid=MAIL_UID, port=self.port, ssl_port=self.ssl_port))

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start Dovecot and wait until it greets with +OK. Raises RuntimeError if it cannot."""
        if self.running:
            return
        with open(self.base / "stdout.log", "ab") as out:
            self._process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                             stdout=out, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._greets():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Dovecot did not start:\n{self.log_tail()}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill Dovecot's process group and wait until every process in it is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        _kill_group(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid, signal.SIGKILL)
            process.wait()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        _kill_group(process.pid, signal.SIGKILL)  # stragglers only; normally none are left

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def add_user(self, name: str, password: str) -> None:
        """Create a user, or change its password; the next login sees the change."""
        if any(c in name + password for c in ":/\r\n") or not name or name.startswith("."):
            raise ValueError("user names and passwords may not contain ':', '/' or line breaks")
        changed = name in self.users
        self.users[name] = password
        self._mailbox(name)
        path = self.base / "users" / name
        old_mtime = int(path.stat().st_mtime) if path.exists() else 0
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(f"{name}:{{PLAIN}}{password}\n")
        mtime = max(int(time.time()), old_mtime + 1)  # the mtime must differ, even within a second
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
        if changed:
            # Dovecot skips the re-check if it already looked this second: let the second pass.
            time.sleep(1.01 - time.time() % 1)

    def new_user(self, prefix: str = "user") -> tuple[str, str]:
        """Create a user with a unique name and a random password; return (name, password)."""
        name = f"{prefix}{next(self._serial)}"
        password = f"pw-{secrets.token_hex(8)}"
        self.add_user(name, password)
        return name, password

    def deliver(self, user: str, raw: bytes) -> Path:
        """Put one message into user's Maildir the way an MTA does (tmp/, then rename into new/)."""
        box = self._mailbox(user)
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._serial)}.crm-test"
        tmp = box / "tmp" / name
        with open(tmp, "xb") as fh:
            fh.write(raw)
            os.fchown(fh.fileno(), MAIL_UID, MAIL_UID)
        final = box / "new" / name
        os.rename(tmp, final)
        return final

    def maildir(self, user: str) -> Path:
        return self.base / "mail" / user

    def count(self, user: str) -> int:
        """Return how many messages are on the server for user (new/ and cur/)."""
        box = self.maildir(user)
        return sum(1 for sub in ("new", "cur") if (box / sub).is_dir() for _ in (box / sub).iterdir())

    def clear(self, user: str) -> None:
        """Remove every message of user directly from the Maildir."""
        box = self.maildir(user)
        for sub in ("new", "cur"):
            for path in (box / sub).glob("*") if (box / sub).is_dir() else ():
                path.unlink()

    def _mailbox(self, user: str) -> Path:
        box = self.maildir(user)
        if not (box / "tmp").is_dir():
            for path in (box, box / "new", box / "cur", box / "tmp"):
                path.mkdir(exist_ok=True)
                os.chown(path, MAIL_UID, MAIL_UID)
        return box

    def _greets(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                return sock.recv(64).startswith(b"+OK")
        except OSError:
            return False


MAILUTILS_CONF = """\
logging {{ syslog no; print-severity yes; }};
auth {{ authentication generic; authorization virtdomain; }};
virtdomain {{ passwd-dir "{d}/etc"; }};
mailbox {{ mailbox-type maildir; }};
mandatory-locking {{ enable yes; lock-directory "{d}/locks"; }};
tcp-wrappers {{ enable no; }};
mode daemon;
foreground yes;
pidfile "{d}/pop3d.pid";
max-children 50;
timeout 600;
server {host}:{port} {{ transcript yes; tls-mode false; }};
"""


class MailutilsServer:
    """A private GNU Mailutils pop3d on .port (plain POP3): a second real server, one that takes a
    message's UIDL from an X-UIDL header inside it (so a sender can choose it), writes that header
    into every message at the first UIDL, and applies DELE at QUIT."""

    host = LOOPBACK

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_ports(1)[0]
        self._process: subprocess.Popen[bytes] | None = None
        self._serial = itertools.count()
        self._passwd: list[str] = []
        for name in ("etc", "home", "locks"):
            (base / name).mkdir()
        os.chown(base / "locks", MAIL_UID, MAIL_UID)
        self.conf = base / "pop3d.conf"
        self.conf.write_text(MAILUTILS_CONF.format(d=base, host=LOOPBACK, port=self.port))

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start pop3d and wait until it greets with +OK. Raises RuntimeError if it cannot."""
        if self.running:
            return
        # A user name without "@" is looked up in the passwd file named after the local address
        # of the daemon's standard input: bind it to a loopback socket (files localhost, 127.0.0.1).
        stdin = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stdin.bind((LOOPBACK, 0))
        try:
            with open(self.base / "stdout.log", "ab") as out:
                self._process = subprocess.Popen([POP3D, f"--config-file={self.conf}"], stdin=stdin.fileno(),
                                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            stdin.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _greets(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pop3d did not start:\n{self.log_tail()}")
            time.sleep(0.01)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        _kill_group(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        path = self.base / "stdout.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def new_user(self, prefix: str = "mu") -> tuple[str, str]:
        """Create a user with a unique name and a random password; return (name, password)."""
        name = f"{prefix}{next(self._serial)}"
        password = f"pw-{secrets.token_hex(8)}"
        hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, text=True,
                                check=True, capture_output=True).stdout.strip()
        home = self.base / "home" / name
        for path in (home, home / "INBOX", *(home / "INBOX" / sub for sub in ("new", "cur", "tmp"))):
            path.mkdir()
            os.chown(path, MAIL_UID, MAIL_UID)
        self._passwd.append(f"{name}:{hashed}:{MAIL_UID}:{MAIL_UID}::{home}:/bin/false\n")
        for domain in ("localhost", LOOPBACK):
            tmp = self.base / "etc" / f".{domain}.tmp"
            tmp.write_text("".join(self._passwd))
            os.replace(tmp, self.base / "etc" / domain)
        return name, password

    def maildir(self, user: str) -> Path:
        return self.base / "home" / user / "INBOX"

    def deliver(self, user: str, raw: bytes) -> Path:
        """Put one message into the user's Maildir (tmp/, then new/), with LF line ends: pop3d
        rewrites a CRLF file into a bare header, and the message is gone."""
        box = self.maildir(user)
        name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._serial)}.crm-test"
        tmp = box / "tmp" / name
        with open(tmp, "xb") as fh:
            fh.write(raw.replace(b"\r\n", b"\n"))
            os.fchown(fh.fileno(), MAIL_UID, MAIL_UID)
        os.rename(tmp, box / "new" / name)
        return box / "new" / name

    def count(self, user: str) -> int:
        box = self.maildir(user)
        return sum(1 for sub in ("new", "cur") for _ in (box / sub).iterdir())

    def bodies(self, user: str) -> list[bytes]:
        """The messages on the server, as files (with the X-UIDL headers pop3d wrote into them)."""
        box = self.maildir(user)
        return [path.read_bytes() for sub in ("new", "cur") for path in sorted((box / sub).iterdir())]


def _greets(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            return sock.recv(64).startswith(b"+OK")
    except OSError:
        return False


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


class SmtpServer:
    """aiosmtpd with AUTH: STARTTLS offered on .port, implicit TLS on .ssl_port."""

    host = LOOPBACK

    def __init__(self, base: Path) -> None:
        cert, key = make_cert(base)
        self.cafile = str(cert)
        self.users: dict[str, str] = {}
        # (auth login, MAIL FROM, RCPT TOs, content bytes) per message received
        self.messages: list[tuple[str | None, str, list[str], bytes]] = []
        self._serial = itertools.count()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.port, self.ssl_port = free_ports(2)
        common = dict(hostname=LOOPBACK, authenticator=self._authenticate, auth_require_tls=False)
        self._controllers = [
            Controller(_Capture(self.messages), port=self.port, tls_context=context, **common),
            Controller(_Capture(self.messages), port=self.ssl_port, ssl_context=context, **common),
        ]

    def start(self) -> None:
        for controller in self._controllers:
            controller.start()

    def stop(self) -> None:
        for controller in self._controllers:
            controller.stop()

    def add_user(self, name: str, password: str) -> None:
        self.users[name] = password

    def new_user(self, prefix: str = "sender") -> tuple[str, str]:
        name, password = f"{prefix}{next(self._serial)}", f"pw-{secrets.token_hex(8)}"
        self.add_user(name, password)
        return name, password

    def _authenticate(self, server: object, session: object, envelope: object, mechanism: str,
                      auth_data: object) -> AuthResult:
        # handled=False on failure: otherwise aiosmtpd sends no reply and the client hangs.
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode()
        ok = self.users.get(login) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False, auth_data=login if ok else None)


class _Capture:
    def __init__(self, messages: list) -> None:
        self.messages = messages

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((session.auth_data, envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.content))
        return "250 OK"


Reply = bytes | Callable[[bytes], bytes]


class FakePop3Server:
    """A scripted POP3 server in a thread: replies maps a command to its reply (or a
    function of the command's argument). Unknown commands get -ERR."""

    host = LOOPBACK

    def __init__(self, replies: dict[str, Reply]) -> None:
        self.replies = replies
        self.commands: list[bytes] = []
        self._server = socketserver.ThreadingTCPServer((LOOPBACK, 0), _FakePop3Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        # A short poll interval: shutdown() waits for it, and the default is half a second.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    def __enter__(self) -> FakePop3Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _FakePop3Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        fake: FakePop3Server = self.server.fake  # type: ignore[attr-defined]
        self.wfile.write(b"+OK fake POP3 ready\r\n")
        for line in self.rfile:
            command, _, argument = line.strip().partition(b" ")
            fake.commands.append(command.upper())
            reply = fake.replies.get(command.upper().decode(errors="replace"), b"-ERR unknown command")
            self.wfile.write((reply(argument) if callable(reply) else reply) + b"\r\n")
            if command.upper() == b"QUIT":
                return


NO_UIDL_REPLIES: dict[str, Reply] = {
    "CAPA": b"+OK\r\nUSER\r\n.",
    "USER": b"+OK",
    "PASS": b"+OK signed in",
    "STAT": b"+OK 2 320",
    "LIST": b"+OK\r\n1 160\r\n2 160\r\n.",
    "UIDL": b"-ERR unknown command",
    "QUIT": b"+OK bye",
}


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    base = _make_base("crm-dovecot-")
    server = DovecotServer(base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def mailutils() -> Iterator[MailutilsServer]:
    base = _make_base("crm-mailutils-")
    server = MailutilsServer(base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    base = _make_base("crm-smtp-")
    server = SmtpServer(base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Port of a listener that never accepts: the kernel completes the TCP handshake, then
    nothing is ever said (the timeout case)."""
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def no_uidl_server() -> Iterator[FakePop3Server]:
    """A POP3 server that signs anyone in, has 2 messages and answers -ERR to UIDL."""
    with FakePop3Server(dict(NO_UIDL_REPLIES)) as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    return free_ports(1)[0]
