"""Real servers for signing in with OAuth 2.0: Dovecot checking bearer tokens, aiosmtpd taking
AUTH XOAUTH2, and a proxy that behaves like Microsoft's POP3 server.

All of them check tokens against the test authorization server (tests/oauth_server.py) over
HTTP, through its RFC 7662 introspection endpoint. Use the fixtures with
`from tests.oauth_servers import *` in a test module. Recipe: /work/shared/tooling.md,
"POP3 with OAuth 2.0".
"""
from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult

from tests.oauth_server import OAuthServer
from tests.servers import LOOPBACK, DovecotServer, _Capture, _make_base, free_ports, make_cert

__all__ = [
    "oauth_server", "oauth_dovecot", "oauth_smtp_server", "one_line_refusing_proxy",
    "OAuthDovecot", "OAuthSmtpServer", "OneLineRefusingProxy", "introspect",
]

INTROSPECTION_TIMEOUT_S = 3
# What Dovecot and Gmail answer a refused token with (base64 of this JSON, after "+ "/"334 ").
REFUSED_CHALLENGE = {"status": "401", "schemes": "bearer", "scope": "mail"}
ONE_LINE_REFUSAL = b"-ERR AUTH XOAUTH2 with an initial response is not supported\r\n"
RELAY_CHUNK_BYTES = 65536

OAUTH2_CONF = """\
introspection_mode = post
introspection_url = {url}
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 3000
"""

PASSWD_FILE_PASSDB = """passdb {
  driver = passwd-file
  args = %s/users/%%u
}"""


class OAuthDovecot(DovecotServer):
    """A private Dovecot whose POP3 logins with XOAUTH2 or OAUTHBEARER are checked against the
    authorization server's introspection endpoint; PLAIN with a password still works for users
    made with add_user()."""

    def __init__(self, base: Path, idp: OAuthServer) -> None:
        super().__init__(base)
        conf = self.conf.read_text()
        conf = conf.replace("auth_mechanisms = plain login", "auth_mechanisms = plain xoauth2 oauthbearer")
        oauth_passdb = (f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                        f"  args = {base}/dovecot-oauth2.conf.ext\n}}\n")
        old = PASSWD_FILE_PASSDB % base
        assert old in conf, "tests/servers.py changed its passdb: update OAuthDovecot"
        conf = conf.replace(old, oauth_passdb + old.replace("passdb {", "passdb {\n  mechanisms = plain", 1))
        self.conf.write_text(conf)
        (base / "dovecot-oauth2.conf.ext").write_text(
            OAUTH2_CONF.format(url=idp.introspection_url_with_credentials()))
        self.idp = idp

    def mailbox(self, user: str) -> Path:
        """Make sure user's Maildir exists (a token user needs no password) and return it."""
        return self._mailbox(user)


def introspect(idp: OAuthServer, token: str) -> dict:
    """Ask the authorization server about token over HTTP, as a resource server does."""
    rs = idp.resource_server
    basic = base64.b64encode(f"{rs.client_id}:{rs.client_secret}".encode()).decode()
    req = urllib.request.Request(idp.introspection_url, method="POST",
                                 data=urllib.parse.urlencode({"token": token}).encode(),
                                 headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(req, timeout=INTROSPECTION_TIMEOUT_S) as response:
        return json.loads(response.read())


class _XOAuth2Handler(_Capture):
    """aiosmtpd handler: AUTH XOAUTH2 checked by introspection (Gmail's replies on refusal)."""

    def __init__(self, messages: list, idp: OAuthServer, forms: list[str]) -> None:
        super().__init__(messages)
        self.idp, self.forms = idp, forms

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        if len(args) == 1:
            self.forms.append("two-step")
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            self.forms.append("one-line")
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                return AuthResult(success=False, handled=False, message="501 5.5.2 Can't decode base64")
        fields = dict(part.split("=", 1) for part in blob.decode(errors="replace").split("\x01") if "=" in part)
        user, auth = fields.get("user", ""), fields.get("auth", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        answer = introspect(self.idp, token) if token else {}
        if answer.get("active") and answer.get("username") == user:
            return AuthResult(success=True, auth_data=user)
        # Gmail: the error JSON as a challenge, the client's empty line, then 535.
        await server.challenge_auth(json.dumps(REFUSED_CHALLENGE))
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not accepted")


def _refuse_passwords(server: object, session: object, envelope: object, mechanism: str,
                      auth_data: object) -> AuthResult:
    return AuthResult(success=False, handled=False)  # handled=False, or the client hangs


class OAuthSmtpServer:
    """aiosmtpd offering AUTH XOAUTH2 (and LOGIN/PLAIN, which always fail): STARTTLS on .port,
    implicit TLS on .ssl_port. .forms records "two-step" or "one-line" per AUTH XOAUTH2."""

    host = LOOPBACK

    def __init__(self, base: Path, idp: OAuthServer) -> None:
        cert, key = make_cert(base)
        self.cafile = str(cert)
        self.messages: list[tuple[str | None, str, list[str], bytes]] = []
        self.forms: list[str] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.port, self.ssl_port = free_ports(2)
        common = dict(hostname=LOOPBACK, authenticator=_refuse_passwords, auth_require_tls=False)
        self._controllers = [
            Controller(_XOAuth2Handler(self.messages, idp, self.forms), port=self.port,
                       tls_context=context, **common),
            Controller(_XOAuth2Handler(self.messages, idp, self.forms), port=self.ssl_port,
                       ssl_context=context, **common),
        ]

    def start(self) -> None:
        for controller in self._controllers:
            controller.start()

    def stop(self) -> None:
        for controller in self._controllers:
            controller.stop()


class OneLineRefusingProxy:
    """A POP3 proxy in front of a server that refuses `AUTH XOAUTH2 <string>` on one line, as
    Microsoft's servers do, and relays everything else unchanged.

    Plain POP3 on .port; POP3 over implicit TLS on .ssl_port (terminated here, with the
    certificate in .cafile). It keeps the command words it saw (.commands, never arguments)
    and counts refused one-line attempts (.one_line_refused).
    """

    host = LOOPBACK

    def __init__(self, upstream_port: int, base: Path) -> None:
        self.upstream_port = upstream_port
        cert, key = make_cert(base)
        self.cafile = str(cert)
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(cert, key)
        self.commands: list[str] = []
        self.one_line_refused = 0
        self._lock = threading.Lock()
        self._listeners = [socket.create_server((LOOPBACK, 0)), socket.create_server((LOOPBACK, 0))]
        self.port = self._listeners[0].getsockname()[1]
        self.ssl_port = self._listeners[1].getsockname()[1]
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._accept, args=(listener, tls), daemon=True)
                         for listener, tls in zip(self._listeners, (False, True))]

    def start(self) -> OneLineRefusingProxy:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for listener in self._listeners:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self, listener: socket.socket, tls: bool) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, tls), daemon=True).start()

    def _serve(self, client: socket.socket, tls: bool) -> None:
        try:
            if tls:
                client = self._tls.wrap_socket(client, server_side=True)
            upstream = socket.create_connection((LOOPBACK, self.upstream_port), timeout=10)
        except OSError:
            client.close()
            return
        threading.Thread(target=_pump, args=(upstream, client), daemon=True).start()
        reader = client.makefile("rb")
        try:
            for line in reader:
                if self._refuse(line):
                    client.sendall(ONE_LINE_REFUSAL)
                else:
                    upstream.sendall(line)
        except OSError:
            pass
        finally:
            reader.close()
            for sock in (upstream, client):
                try:
                    sock.close()
                except OSError:
                    pass

    def _refuse(self, line: bytes) -> bool:
        words = line.strip().split()
        word = words[0].decode("ascii", "replace").upper() if words else ""
        one_line = (word == "AUTH" and len(words) >= 3 and words[1].upper() == b"XOAUTH2")
        with self._lock:
            if word.isalpha() and len(word) <= 8:  # a command, not a base64 continuation line
                self.commands.append(word if word != "AUTH" or len(words) < 2
                                     else f"AUTH {words[1].decode('ascii', 'replace').upper()}")
            if one_line:
                self.one_line_refused += 1
        return one_line


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(RELAY_CHUNK_BYTES):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[OAuthServer]:
    """The test authorization server, started for the session."""
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="session")
def oauth_dovecot(oauth_server: OAuthServer) -> Iterator[OAuthDovecot]:
    """Dovecot checking XOAUTH2 and OAUTHBEARER tokens against oauth_server."""
    base = _make_base("crm-dovecot-oauth-")
    server = OAuthDovecot(base, oauth_server)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def oauth_smtp_server(oauth_server: OAuthServer) -> Iterator[OAuthSmtpServer]:
    """aiosmtpd taking AUTH XOAUTH2, tokens checked against oauth_server."""
    base = _make_base("crm-smtp-oauth-")
    server = OAuthSmtpServer(base, oauth_server)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def one_line_refusing_proxy(oauth_dovecot: OAuthDovecot, tmp_path: Path) -> Iterator[OneLineRefusingProxy]:
    """A Microsoft-like POP3 server: oauth_dovecot behind a proxy refusing one-line XOAUTH2."""
    proxy = OneLineRefusingProxy(oauth_dovecot.port, tmp_path).start()
    try:
        yield proxy
    finally:
        proxy.stop()
