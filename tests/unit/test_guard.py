"""The outbound guard's rules, decided from addresses alone (no connection is ever made)."""
import socket
import ssl

import pytest

from mail import errors, guard
from mail.errors import MailError
from mail.guard import MAIL_PORTS, GuardPolicy

DEFAULT = GuardPolicy()
NAMES = {
    "mail.corp.example": ["10.0.0.7"],
    "other.corp.example": ["10.0.0.8"],
    "mixed.example": ["93.184.216.34", "10.0.0.5"],
    "public.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    """Answer NAMES from a table; anything else must be an IP literal (AI_NUMERICHOST),
    so unit tests never ask DNS and other names fail as unresolvable."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in NAMES:
            return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (ip, port, 0, 0) if ":" in ip else (ip, port)) for ip in NAMES[host]]
        return real(host, port, *args, flags=socket.AI_NUMERICHOST, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def no_connect(monkeypatch):
    """Fail the test if anything tries to open a socket."""
    def refuse(*args, **kwargs):
        raise AssertionError("the guard must decide without connecting")

    monkeypatch.setattr(socket, "socket", refuse)


def refusal(host: str, port: int, policy: GuardPolicy = DEFAULT) -> MailError:
    with pytest.raises(MailError) as caught:
        guard.check_destination(host, port, policy)
    assert caught.value.kind == "destination"
    assert str(caught.value).startswith("This server is not allowed: ")
    return caught.value


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.8.8.8", "127.1", "2130706433", "10.1.2.3", "172.16.5.4", "192.168.1.10",
    "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    "::1", "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "64:ff9b::a00:1", "2002:a00:1::1", "mail.corp.example", "[::1]",
])
def test_local_and_private_addresses_refused_by_default(host):
    error = refusal(host, 110)
    assert "local or private network" in str(error)


@pytest.mark.parametrize("port", sorted(MAIL_PORTS))
@pytest.mark.parametrize("host", ["8.8.8.8", "2001:4860:4860::8888", "public.example"])
def test_public_address_allowed_on_mail_ports(host, port):
    infos = guard.check_destination(host, port, DEFAULT)
    assert infos and all(info[4][1] == port for info in infos)


@pytest.mark.parametrize("port", [22, 80, 143, 443, 3306, 5432, 6379, 8080, 11211])
def test_public_address_refused_on_other_ports(port):
    assert "only the mail ports 25, 110, 465, 587, 995 and 2525" in str(refusal("8.8.8.8", port))


def test_name_with_a_private_address_among_public_ones_refused():
    refusal("mixed.example", 110)


@pytest.mark.parametrize("allowed, host, port", [
    (("10.0.0.0/8",), "10.1.2.3", 8110),
    (("10.1.2.3",), "10.1.2.3", 22),
    (("mail.corp.example",), "mail.corp.example", 8110),
    (("MAIL.Corp.Example.",), "mail.corp.example", 110),
    (("10.0.0.0/24",), "mail.corp.example", 1100),
    (("fd00::/8",), "fd00::25", 2525),
    (("127.0.0.1",), "127.0.0.1", 9),
    (("8.8.8.8",), "8.8.8.8", 8080),
])
def test_allowed_list_lifts_address_and_port_rules(allowed, host, port):
    assert guard.check_destination(host, port, GuardPolicy(allowed=allowed))


@pytest.mark.parametrize("allowed, host, port", [
    (("10.0.0.0/24",), "10.0.1.1", 110),
    (("mail.corp.example",), "other.corp.example", 110),
    (("10.0.0.5",), "mixed.example", 8110),
    (("127.0.0.1",), "::1", 110),
])
def test_allowed_list_covers_only_what_it_names(allowed, host, port):
    refusal(host, port, GuardPolicy(allowed=allowed))


@pytest.mark.parametrize("host, port", [("127.0.0.1", 22), ("10.0.0.1", 5432), ("8.8.8.8", 80),
                                        ("mail.corp.example", 8110)])
def test_allow_local_allows_any_address_and_port(host, port):
    assert guard.check_destination(host, port, GuardPolicy(allow_local=True))


def test_unresolvable_name_reports_host_not_found():
    with pytest.raises(MailError) as caught:
        guard.check_destination("mail.example.invalid", 995, DEFAULT)
    assert caught.value.kind == "host_not_found"
    assert str(caught.value) == "The server name mail.example.invalid could not be found."


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_port_out_of_range_refused(port):
    refusal("8.8.8.8", port)


@pytest.mark.parametrize("host, ports", [("127.0.0.1", (22, 9, 6379)), ("8.8.8.8", (22, 6379, 8080))])
def test_refusal_decided_without_connecting_and_same_for_every_port(no_connect, host, ports):
    sentences = set()
    for port in ports:
        with pytest.raises(MailError) as caught:
            guard.connect(host, port, DEFAULT, timeout_s=1)
        sentences.add(str(caught.value))
    assert len(sentences) == 1


@pytest.mark.parametrize("text, expected", [
    ("10.0.0.0/8", "10.0.0.0/8"),
    ("10.1.2.3/8", "10.0.0.0/8"),
    (" 192.168.1.5 ", "192.168.1.5"),
    ("[fd00::1]", "fd00::1"),
    ("Mail.Example.COM.", "mail.example.com"),
    ("localhost", "localhost"),
])
def test_valid_allowed_entries_are_normalised(text, expected):
    assert guard.validate_allowed_entry(text) == expected


@pytest.mark.parametrize("text", ["http://mail.example.com", "mail.example.com:110", "*.example.com",
                                  "10.0.0.0/33", "10.0.0.300", "bad host", "-x.example", ""])
def test_invalid_allowed_entries_raise_a_sentence(text):
    with pytest.raises(ValueError, match="is not a host name, an IP address or a network"):
        guard.validate_allowed_entry(text)


def test_policy_from_config_reads_lines_and_commas():
    text = "10.0.0.0/8, Mail.Corp.Example\n# comment\n\n192.168.1.5,10.0.0.0/8"
    policy = guard.policy_from_config(False, text)
    assert policy == GuardPolicy(allow_local=False,
                                 allowed=("10.0.0.0/8", "mail.corp.example", "192.168.1.5"))
    assert guard.policy_from_config(True, "").allow_local


def test_policy_from_config_rejects_an_invalid_entry():
    with pytest.raises(ValueError, match="“http://x” is not"):
        guard.policy_from_config(False, "10.0.0.1\nhttp://x")


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    error.verify_code, error.verify_message = code, message
    return error


@pytest.mark.parametrize("exc, kind, sentence", [
    (ConnectionRefusedError(111, "Connection refused"), "refused",
     "The server refused the connection on port 995."),
    (TimeoutError("timed out"), "timeout", "The server did not answer within 10 seconds."),
    (OSError(101, "Network is unreachable"), "network",
     "The server mail.example.com could not be reached: network is unreachable."),
    (ConnectionResetError(104, "Connection reset by peer"), "protocol",
     "The server closed the connection unexpectedly."),
    (cert_error(10, "certificate has expired"), "certificate",
     "The server's certificate is not valid for mail.example.com: it has expired."),
    (cert_error(62, "Hostname mismatch"), "certificate",
     "The server's certificate is not valid for mail.example.com: it was issued for another host name."),
    (cert_error(20, "unable to get local issuer certificate"), "certificate",
     "The server's certificate is not valid for mail.example.com: it is signed by an unknown authority."),
    (cert_error(99, "Something new"), "certificate",
     "The server's certificate is not valid for mail.example.com: Something new."),
])
def test_network_and_tls_failures_become_one_sentence(exc, kind, sentence):
    error = errors.from_os_error(exc, "mail.example.com", 995, 10)
    assert (error.kind, str(error)) == (kind, sentence)
