"""The OAuth client side without a server: providers, the authorization URL with PKCE, expiry,
and what the guard refuses before any connection (mail/oauth.py)."""
from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from mail import oauth
from mail.errors import MailError
from mail.guard import GuardPolicy

REDIRECT = "https://crm.example.com/mail/oauth/callback"


def client_for(provider: oauth.Provider) -> oauth.SignInClient:
    return oauth.SignInClient(provider, "the-client-id", "the-client-secret", REDIRECT)


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def test_google_asks_for_mail_offline_with_consent() -> None:
    start = oauth.start_sign_in(client_for(oauth.GOOGLE), login_hint="ann@gmail.com")
    assert start.url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    params = query(start.url)
    assert params["scope"] == "https://mail.google.com/"
    assert (params["access_type"], params["prompt"]) == ("offline", "consent")
    assert params["login_hint"] == "ann@gmail.com"
    assert (params["client_id"], params["redirect_uri"], params["response_type"]) == (
        "the-client-id", REDIRECT, "code")
    assert "the-client-secret" not in start.url


def test_microsoft_asks_for_pop_smtp_and_offline_access() -> None:
    start = oauth.start_sign_in(client_for(oauth.MICROSOFT))
    assert start.url.startswith("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?")
    assert query(start.url)["scope"].split() == [
        "https://outlook.office.com/POP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send", "offline_access"]
    assert oauth.MICROSOFT.token_url == "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert oauth.GOOGLE.token_url == "https://oauth2.googleapis.com/token"


def test_the_challenge_is_the_s256_of_a_fresh_verifier_and_state() -> None:
    first, second = (oauth.start_sign_in(client_for(oauth.GOOGLE)) for _ in range(2))
    for start in (first, second):
        params = query(start.url)
        assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", start.code_verifier)
        digest = hashlib.sha256(start.code_verifier.encode("ascii")).digest()
        assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert params["code_challenge_method"] == "S256"
        assert params["state"] == start.state and len(start.state) >= 32
        assert start.code_verifier not in start.url
    assert first.state != second.state and first.code_verifier != second.code_verifier


def test_secrets_stay_out_of_reprs() -> None:
    start = oauth.start_sign_in(client_for(oauth.GOOGLE))
    tokens = oauth.Tokens("access-secret", "refresh-secret", None)
    assert start.code_verifier not in repr(start)
    assert "access-secret" not in repr(tokens) and "refresh-secret" not in repr(tokens)
    assert "the-client-secret" not in repr(client_for(oauth.GOOGLE))


def test_a_generic_provider_needs_web_endpoints_and_a_scope() -> None:
    keycloak = oauth.generic_provider("Keycloak", "https://id.example.com/auth", "https://id.example.com/token",
                                      "openid mail")
    assert keycloak.scopes == ("openid", "mail") and keycloak.extra_params == ()
    with pytest.raises(ValueError, match="token endpoint must be a web address"):
        oauth.generic_provider("X", "https://id.example.com/auth", "ftp://id.example.com/token", "mail")
    with pytest.raises(ValueError, match="authorization endpoint"):
        oauth.generic_provider("X", "id.example.com/auth", "https://id.example.com/token", "mail")
    with pytest.raises(ValueError, match="at least one scope"):
        oauth.generic_provider("X", "https://id.example.com/auth", "https://id.example.com/token", " ")


def test_refresh_is_due_within_the_margin_before_expiry() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
    margin = timedelta(seconds=oauth.REFRESH_MARGIN_S)
    assert not oauth.needs_refresh(now + margin + timedelta(seconds=1), now)
    assert oauth.needs_refresh(now + margin, now)
    assert oauth.needs_refresh(now - timedelta(hours=1), now)
    assert oauth.needs_refresh(None, now)
    assert not oauth.needs_refresh((now + timedelta(hours=1)).replace(tzinfo=None), now)  # naive = UTC


def test_the_callback_state_must_match_before_any_exchange() -> None:
    client = client_for(oauth.GOOGLE)
    start = oauth.start_sign_in(client)
    network = oauth.Network(GuardPolicy())
    with pytest.raises(oauth.SignInFailed, match="did not start here"):
        oauth.finish_sign_in(client, start, {"state": start.state + "x", "code": "c"}, network)
    with pytest.raises(oauth.SignInFailed, match="Access was not allowed at Google"):
        oauth.finish_sign_in(client, start, {"state": start.state, "error": "access_denied"}, network)


def test_the_guard_refuses_a_private_token_endpoint_unless_allowed(closed_port: int) -> None:
    provider = oauth.generic_provider("Local", "http://127.0.0.1/auth", f"http://127.0.0.1:{closed_port}/token", "mail")
    client = client_for(provider)
    with pytest.raises(MailError) as refused:
        oauth.refresh(client, "rt", oauth.Network(GuardPolicy()))
    assert refused.value.kind == "destination" and "local or private network" in str(refused.value)
    # Allowed, it is tried: nobody listens, which is a network failure to retry later.
    with pytest.raises(oauth.ProviderUnreachable) as unreachable:
        oauth.refresh(client, "rt", oauth.Network(GuardPolicy(allow_local=True), timeout_s=2))
    assert unreachable.value.kind == "network" and "trying again later" in str(unreachable.value)


def test_plain_http_never_goes_to_a_public_address() -> None:
    provider = oauth.generic_provider("Public", "https://8.8.8.8/auth", "http://8.8.8.8/token", "mail")
    with pytest.raises(MailError, match="must use an https:// address") as refused:
        oauth.refresh(client_for(provider), "rt", oauth.Network(GuardPolicy()))
    assert refused.value.kind == "destination"
