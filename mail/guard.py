"""Outbound guard: where the CRM may connect for a user, and how the connection is secured.

The account form names a host and a port and the server connects there. Unchecked, that
form is a port scanner and a door into the private network (databases, cloud metadata at
169.254.169.254). So by default only public addresses on mail ports are allowed; an
administrator can allow local servers or list specific hosts and networks.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
from dataclasses import dataclass

from mail import errors
from mail.errors import MailError

MAIL_PORTS = frozenset({110, 995, 25, 465, 587, 2525})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 forms that carry an IPv4 address inside: a private IPv4 address must not slip
# through as a "global" IPv6 one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_ENTRY_SEPARATORS = re.compile(r"[,\n\r]+")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardPolicy:
    """What an administrator allows beyond public mail servers.

    allowed holds host names, IP addresses or CIDR networks; a destination listed there may
    be private and use any port.
    """

    allow_local: bool = False
    allowed: tuple[str, ...] = ()


def normalize_host(host: str) -> str:
    """Return host lower-cased, without brackets or a trailing dot, IDNA-encoded if needed."""
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    name = name.rstrip(".").lower()
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            pass  # left as typed: resolving it fails with a clear sentence
    return name


def is_public(ip: IPAddress) -> bool:
    """Return True if ip (and any IPv4 address embedded in it) is globally reachable."""
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            candidates.append(ip.ipv4_mapped)
        if ip.sixtofour:
            candidates.append(ip.sixtofour)
        if ip in _NAT64:
            candidates.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return all(
        a.is_global and not (a.is_loopback or a.is_private or a.is_link_local
                             or a.is_multicast or a.is_reserved or a.is_unspecified)
        for a in candidates
    )


def resolve(host: str, port: int) -> list[tuple]:
    """Return the getaddrinfo entries (TCP, IPv4/IPv6) for host and port.

    Raises MailError('host_not_found') if the name does not resolve, or
    MailError('destination') if the port is out of range.
    """
    if not 1 <= port <= 65535:
        raise MailError("destination", "This server is not allowed: the port must be a number "
                                       "from 1 to 65535.")
    name = normalize_host(host)
    if not name:
        raise errors.host_not_found(host)
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        log.info("Could not resolve %s: %s", name, exc)
        raise errors.host_not_found(host) from None
    infos = [i for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
    if not infos:
        raise errors.host_not_found(host)
    return list(dict.fromkeys(infos))  # getaddrinfo repeats entries on some systems


def check_destination(host: str, port: int, policy: GuardPolicy) -> list[tuple]:
    """Resolve host and return its getaddrinfo entries if policy allows connecting to them.

    Decided from the addresses alone, never by connecting, so a refusal says nothing about
    whether the port is open. Every address must pass, so a name cannot mix a public
    address with a private one. Raises MailError('host_not_found') or MailError('destination').
    """
    infos = resolve(host, port)
    if policy.allow_local or normalize_host(host) in _allowed_names(policy):
        return infos
    networks = _allowed_networks(policy)
    unlisted = [ip for ip in (ipaddress.ip_address(i[4][0]) for i in infos)
                if not any(ip in net for net in networks)]
    if any(not is_public(ip) for ip in unlisted):
        reason = f"{host} is on a local or private network, which an administrator must allow first."
    elif unlisted and port not in MAIL_PORTS:
        ports = ", ".join(str(p) for p in sorted(MAIL_PORTS)[:-1])
        reason = (f"only the mail ports {ports} and {max(MAIL_PORTS)} can be used unless an "
                  "administrator allows the server.")
    else:
        return infos
    log.warning("Refused outbound connection to %s port %d (%s)", host, port,
                ", ".join(str(ip) for ip in unlisted))
    raise MailError("destination", f"This server is not allowed: {reason}")


def connect(host: str, port: int, policy: GuardPolicy, timeout_s: float) -> socket.socket:
    """Check the destination, then connect to a vetted address and return the socket.

    Connects to the IP address that was checked, so DNS cannot change in between.
    Raises MailError: host_not_found, destination, refused, timeout or network.
    """
    last_error: OSError | None = None
    for family, kind, proto, _, sockaddr in check_destination(host, port, policy):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout_s)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    assert last_error is not None  # check_destination never returns an empty list
    log.info("Connection to %s port %d failed: %s", host, port, last_error)
    raise errors.from_os_error(last_error, host, port, timeout_s) from None


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """Return a client TLS context: system CAs plus cafile, host names always checked.

    Raises MailError('certificate') if cafile cannot be loaded.
    """
    context = ssl.create_default_context()
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError):
            raise MailError("certificate", f"The certificate file {cafile} could not be read.") from None
    return context


def wrap_tls(context: ssl.SSLContext, sock: socket.socket, host: str) -> ssl.SSLSocket:
    """Run the TLS handshake on sock, checking the certificate against host; closes sock on failure."""
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def describe_tls(sock: ssl.SSLSocket, host: str) -> str:
    """Return e.g. 'TLSv1.3, certificate valid for mail.example.com' for a report step."""
    return f"{sock.version()}, certificate valid for {host}"


def peer(sock: socket.socket, port: int) -> str:
    """Return e.g. '203.0.113.5 port 995': the address actually connected to."""
    return f"{sock.getpeername()[0]} port {port}"


def validate_allowed_entry(text: str) -> str:
    """Return an allowed-list entry in normal form (address, network or host name).

    Raises ValueError with a sentence for anything else (URLs, ports, wildcards).
    """
    entry = normalize_host(text)
    try:
        if "/" in entry:
            return str(ipaddress.ip_network(entry, strict=False))
        return str(ipaddress.ip_address(entry))
    except ValueError:
        pass
    labels = entry.split(".")
    if (0 < len(entry) <= 253 and all(_LABEL.fullmatch(label) for label in labels)
            and not labels[-1].isdigit()):
        return entry
    raise ValueError(f"“{text.strip()}” is not a host name, an IP address or a network "
                     "such as 10.0.0.0/8.")


def policy_from_config(allow_local: bool, allowed_text: str) -> GuardPolicy:
    """Build a policy from the admin settings: entries one per line or comma-separated.

    Blank entries and lines starting with # are skipped. Raises ValueError for an invalid entry.
    """
    entries: list[str] = []
    for raw in _ENTRY_SEPARATORS.split(allowed_text or ""):
        if raw.strip() and not raw.strip().startswith("#"):
            entries.append(validate_allowed_entry(raw))
    return GuardPolicy(allow_local=allow_local, allowed=tuple(dict.fromkeys(entries)))


def _allowed_networks(policy: GuardPolicy) -> list[IPNetwork]:
    networks = []
    for entry in policy.allowed:
        try:
            networks.append(ipaddress.ip_network(normalize_host(entry), strict=False))
        except ValueError:
            continue  # a host name, matched by _allowed_names
    return networks


def _allowed_names(policy: GuardPolicy) -> set[str]:
    return {normalize_host(entry) for entry in policy.allowed}
