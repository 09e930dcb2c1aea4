"""Every form a credential takes on the wire is masked (issue 10, item 5)."""
from base64 import b64encode

import pytest

from mail import errors
from mail.servers import ServerSettings

USER, SECRET = "rita@northwind.example", "ya29.Token-Or-Password"


def b64(text: str) -> str:
    return b64encode(text.encode()).decode()


@pytest.mark.parametrize("form", [
    SECRET,
    b64(SECRET),  # AUTH LOGIN's password
    b64(f"\0{USER}\0{SECRET}"),  # AUTH PLAIN, no authzid
    b64(f"{USER}\0{USER}\0{SECRET}"),  # AUTH PLAIN with an authzid
    b64(f"user={USER}\x01auth=Bearer {SECRET}\x01\x01"),  # XOAUTH2
], ids=["plain", "login", "auth-plain", "auth-plain-authzid", "xoauth2"])
def test_a_reply_quoting_the_credential_in_any_form_is_masked(form):
    secrets = ServerSettings("mail.example.com", 587, "starttls", USER, SECRET).secrets
    for error in (errors.auth(f"535 you sent {form}", secrets), errors.protocol(f"-ERR {form}?", secrets)):
        assert form not in str(error) and SECRET not in str(error) and "********" in str(error)


def test_the_settings_repr_never_shows_the_password():
    assert SECRET not in repr(ServerSettings("mail.example.com", 995, "ssl", USER, SECRET))
