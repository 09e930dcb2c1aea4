"""Known providers fill in server settings from the address's domain."""
import pytest

from mail.inbound import pop3
from mail import providers
from mail.outbound import smtp
from mail.providers import MICROSOFT_NOTE, PROVIDERS, lookup


@pytest.mark.parametrize("address, pop_host, smtp_host", [
    ("someone@gmail.com", "pop.gmail.com", "smtp.gmail.com"),
    ("Some.One@GoogleMail.COM", "pop.gmail.com", "smtp.gmail.com"),
    ("a@yahoo.com", "pop.mail.yahoo.com", "smtp.mail.yahoo.com"),
    ("a@ymail.com", "pop.mail.yahoo.com", "smtp.mail.yahoo.com"),
    ("a@gmx.com", "pop.gmx.com", "mail.gmx.com"),
    ("a@gmx.net", "pop.gmx.net", "mail.gmx.net"),
    ("a@gmx.de", "pop.gmx.net", "mail.gmx.net"),
    ("a@zoho.com", "pop.zoho.com", "smtp.zoho.com"),
    ("a@fastmail.com", "pop.fastmail.com", "smtp.fastmail.com"),
    ("a@fastmail.fm", "pop.fastmail.com", "smtp.fastmail.com"),
    ("a@aol.com", "pop.aol.com", "smtp.aol.com"),
    ("a@yandex.ru", "pop.yandex.ru", "smtp.yandex.ru"),
    ("a@yandex.com", "pop.yandex.com", "smtp.yandex.com"),
    ("a@mail.ru", "pop.mail.ru", "smtp.mail.ru"),
    ("recent:someone@gmail.com", "pop.gmail.com", "smtp.gmail.com"),
    ("gmail.com", "pop.gmail.com", "smtp.gmail.com"),
    (" a@Gmail.com. ", "pop.gmail.com", "smtp.gmail.com"),
])
def test_lookup_by_domain_ignores_case(address, pop_host, smtp_host):
    provider = lookup(address)
    assert provider is not None and not provider.blocked
    assert (provider.pop_host, provider.smtp_host) == (pop_host, smtp_host)


@pytest.mark.parametrize("address", ["a@outlook.com", "a@hotmail.com", "a@live.com", "a@msn.com",
                                     "a@office365.com", "A@Outlook.COM"])
def test_microsoft_mailboxes_sign_in_with_microsoft_and_mention_the_pop_switch(address):
    provider = lookup(address)
    assert provider is not None and not provider.blocked and provider.key == "microsoft"
    assert (provider.pop_host, provider.pop_port, provider.pop_security) == ("outlook.office365.com", 995, "ssl")
    assert provider.note == MICROSOFT_NOTE
    assert "sign in with Microsoft" in MICROSOFT_NOTE and "Let devices and apps use POP" in MICROSOFT_NOTE


def test_the_built_in_sign_in_providers_name_existing_mail_providers():
    from mail import oauth
    keys = {p.key for p in PROVIDERS.values()}
    for provider in oauth.BUILT_IN.values():
        assert provider.mail_providers and set(provider.mail_providers) <= keys


@pytest.mark.parametrize("address", ["a@icloud.com", "a@me.com", "a@mac.com"])
def test_icloud_blocked_because_it_has_no_pop3(address):
    provider = lookup(address)
    assert provider is not None and provider.blocked and "does not offer POP3" in provider.note


def test_gmail_note_explains_recent_username_and_leave_on_server():
    note = lookup("x@gmail.com").note
    assert "recent:username@gmail.com" in note
    assert "Leave messages in the server" in note


@pytest.mark.parametrize("address", ["a@example.com", "", "not-an-address", "a@gmail.com.evil.example"])
def test_unknown_domain_gives_none(address):
    assert lookup(address) is None


@pytest.mark.parametrize("domain", sorted(d for d, p in PROVIDERS.items() if not p.blocked))
def test_usable_providers_use_standard_ports_for_their_security(domain):
    provider = PROVIDERS[domain]
    assert provider.pop_port == pop3.DEFAULT_PORTS[provider.pop_security]
    assert provider.smtp_port == smtp.DEFAULT_PORTS[provider.smtp_security]
    assert provider.pop_security == "ssl"  # every provider here offers POP3 over TLS
    assert isinstance(provider, providers.Provider)
