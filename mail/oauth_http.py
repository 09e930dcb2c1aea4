"""HTTPS to a token endpoint for mail/oauth.py: Authlib's client session, over http.client,
with every socket made through the outbound guard (mail/guard.py).

The guard's port rule is written for mail ports and a token endpoint speaks HTTPS, so the
addresses are vetted with a mail port (the guard's address rule alone: public, or allowed by an
administrator) and the socket goes to a vetted address on the URL's own port. Plain http is
allowed only to addresses that are not public. Redirects are never followed.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from mail import errors, guard
from mail.errors import MailError

TOKEN_TIMEOUT_S = 10
MAX_RESPONSE_BYTES = 256 * 1024
# Any of the guard's mail ports: vetting with it applies the guard's address rule alone.
ADDRESS_CHECK_PORT = 995


@dataclass(frozen=True)
class Network:
    """How token endpoint connections are made: the guard's policy, a timeout, extra CAs."""

    policy: guard.GuardPolicy
    timeout_s: float = TOKEN_TIMEOUT_S
    cafile: str | None = None


class Unreachable(Exception):
    """The token endpoint could not be reached, or had an outage (HTTP 429 or 5xx)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Response:
    """The little of a requests.Response that Authlib's client reads."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self.content = status, body

    def json(self) -> object:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise Unreachable(f"it answered with an error (HTTP {self.status_code})")


class GuardedSession:
    """Authlib's HTTP session, over http.client with sockets from the guard. No redirects."""

    def __init__(self, network: Network | None) -> None:
        self.network = network

    def post(self, url: str, data: Mapping | None = None, headers: Mapping | None = None,
             auth=None, **_: object) -> _Response:  # noqa: ANN001 (Authlib's ClientAuth)
        if self.network is None:
            raise RuntimeError("no network settings given for a token request")
        body = urllib.parse.urlencode(list((data or {}).items()))
        headers = dict(headers or {})
        if auth is not None:
            url, headers, body = auth.prepare("POST", url, headers, body)
        headers["Content-Length"] = str(len(body.encode()))
        parts = urllib.parse.urlsplit(url)
        status, content = _post(parts, body.encode(), headers, self.network)
        if status == 429 or status >= 500:
            raise Unreachable(f"it answered with an error (HTTP {status})")
        return _Response(status, content)


def _post(parts: urllib.parse.SplitResult, body: bytes, headers: dict, network: Network) -> tuple[int, bytes]:
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        sock = _vetted_socket(host, port, parts.scheme, network)
        if parts.scheme == "https":
            sock = guard.wrap_tls(guard.tls_context(network.cafile), sock, host)
        connection = http.client.HTTPConnection(host, port, timeout=network.timeout_s)
        connection.sock = sock
        try:
            connection.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""),
                               body=body, headers=headers)
            response = connection.getresponse()
            content = response.read(MAX_RESPONSE_BYTES + 1)
        finally:
            connection.close()
    except MailError as exc:
        if exc.kind == "destination":
            raise
        raise Unreachable(exc.message) from None
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, OSError):
            raise Unreachable(errors.from_os_error(exc, host, port, network.timeout_s).message) from None
        raise Unreachable("the connection broke off") from None
    if len(content) > MAX_RESPONSE_BYTES:
        raise Unreachable("its answer was too large")
    return response.status, content


def _vetted_socket(host: str, port: int, scheme: str, network: Network) -> socket.socket:
    infos = guard.check_destination(host, ADDRESS_CHECK_PORT, network.policy)
    addresses = [ipaddress.ip_address(i[4][0]) for i in infos]
    if scheme != "https" and any(guard.is_public(ip) for ip in addresses):
        raise MailError("destination", "This server is not allowed: a sign-in provider on the "
                                       "internet must use an https:// address.")
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(network.timeout_s)
            sock.connect((sockaddr[0], port, *sockaddr[2:]))
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    assert last is not None  # check_destination never returns an empty list
    raise last
