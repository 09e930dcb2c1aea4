"""The authorization code flow, refresh with rotation and revocation, against the real
authorization server on loopback (tests/oauth_server.py) over HTTP."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from mail import oauth
from tests.integration.oauth.helpers import LOCAL, callback_args, consent, local_client, sign_in
from tests.oauth_servers import introspect


def test_sign_in_with_consent_gives_tokens_for_that_user(oauth_server) -> None:
    client = local_client(oauth_server)
    user, password = oauth_server.new_user()
    before = datetime.now(timezone.utc)
    tokens = sign_in(oauth_server, client, user, password)
    assert tokens.access_token and tokens.refresh_token and not tokens.refresh_token_rotated
    assert tokens.scope == "mail"
    assert before + timedelta(minutes=59) < tokens.expires_at <= datetime.now(timezone.utc) + timedelta(hours=1)
    answer = introspect(oauth_server, tokens.access_token)
    assert answer["active"] is True and answer["username"] == user
    assert oauth_server.token_requests[-1] == ("authorization_code", client.client_id, 200)


def test_a_wrong_password_on_the_consent_page_gives_no_code(oauth_server) -> None:
    client = local_client(oauth_server)
    user, _ = oauth_server.new_user()
    start = oauth.start_sign_in(client)
    path = start.url.removeprefix(oauth_server.url)
    page = oauth_server.app.test_client().post(path, data={"username": user, "password": "nope", "allow": "1"})
    assert page.status_code == 401 and b"Wrong user name or password." in page.data
    assert "Location" not in page.headers


def test_denying_consent_comes_back_as_not_allowed(oauth_server) -> None:
    client = local_client(oauth_server)
    user, password = oauth_server.new_user()
    start = oauth.start_sign_in(client)
    args = callback_args(consent(oauth_server, start.url, user, password, decision="deny"))
    assert args["error"] == "access_denied" and "code" not in args
    with pytest.raises(oauth.SignInFailed, match="Access was not allowed at Test provider"):
        oauth.finish_sign_in(client, start, args, LOCAL)


def test_the_server_requires_pkce_s256(oauth_server) -> None:
    client = local_client(oauth_server)
    start = oauth.start_sign_in(client)
    plain = start.url.replace("code_challenge_method=S256", "code_challenge_method=plain")
    without = "&".join(p for p in start.url.split("&") if not p.startswith("code_challenge"))
    for url in (plain, without):
        page = oauth_server.app.test_client().get(url.removeprefix(oauth_server.url))
        assert page.status_code == 400 and b"S256 is required" in page.data


def test_a_code_is_good_once_and_only_with_its_verifier(oauth_server) -> None:
    client = local_client(oauth_server)
    user, password = oauth_server.new_user()
    start = oauth.start_sign_in(client)
    args = callback_args(consent(oauth_server, start.url, user, password))
    other = oauth.start_sign_in(client)  # the same state, another verifier: PKCE must refuse it
    forged = oauth.SignInStart(other.url, start.state, other.code_verifier)
    with pytest.raises(oauth.SignInFailed, match="expired before it was completed"):
        oauth.finish_sign_in(client, forged, args, LOCAL)
    # Authlib deletes a code only after a successful exchange; this one is still good.
    assert oauth.finish_sign_in(client, start, args, LOCAL).access_token
    with pytest.raises(oauth.SignInFailed, match="expired before it was completed"):
        oauth.finish_sign_in(client, start, args, LOCAL)


def test_refresh_rotates_and_the_old_refresh_token_is_refused(oauth_server) -> None:
    client = local_client(oauth_server)
    user, password = oauth_server.new_user()
    first = sign_in(oauth_server, client, user, password)
    second = oauth.refresh(client, first.refresh_token, LOCAL)
    assert second.refresh_token_rotated and second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert introspect(oauth_server, second.access_token)["username"] == user
    with pytest.raises(oauth.SignInAgain, match="Sign in again"):
        oauth.refresh(client, first.refresh_token, LOCAL)
    third = oauth.refresh(client, second.refresh_token, LOCAL)
    assert third.refresh_token_rotated and oauth_server.live_refresh_tokens(user) == [third.refresh_token]


def test_revoking_the_users_grant_means_sign_in_again(oauth_server) -> None:
    client = local_client(oauth_server)
    user, password = oauth_server.new_user()
    tokens = sign_in(oauth_server, client, user, password)
    assert oauth_server.revoke_user(user) == 1
    with pytest.raises(oauth.SignInAgain) as refused:
        oauth.refresh(client, tokens.refresh_token, LOCAL)
    assert refused.value.kind == "auth"
    assert tokens.refresh_token not in str(refused.value) + repr(refused.value)
    assert oauth_server.token_requests[-1] == ("refresh_token", client.client_id, 400)


def test_revocation_through_rfc7009_then_refresh_is_refused(oauth_server) -> None:
    client = local_client(oauth_server)
    user, password = oauth_server.new_user()
    tokens = sign_in(oauth_server, client, user, password)
    assert oauth.revoke(client, tokens.refresh_token, LOCAL) is True
    with pytest.raises(oauth.SignInAgain):
        oauth.refresh(client, tokens.refresh_token, LOCAL)


def test_a_wrong_client_secret_is_the_administrators_problem(oauth_server) -> None:
    client = local_client(oauth_server)
    user, password = oauth_server.new_user()
    tokens = sign_in(oauth_server, client, user, password)
    wrong = oauth.SignInClient(client.provider, client.client_id, "not-the-secret", client.redirect_uri)
    with pytest.raises(oauth.ProviderRefused, match=r"\(invalid_client\): an administrator should check"):
        oauth.refresh(wrong, tokens.refresh_token, LOCAL)
    assert oauth.refresh(client, tokens.refresh_token, LOCAL).access_token  # the grant survived


def test_a_provider_outage_is_retried_later_not_a_sign_in_again(oauth_server, closed_port) -> None:
    client = local_client(oauth_server)
    down = oauth.generic_provider("Test provider", oauth_server.authorization_url,
                                  f"http://127.0.0.1:{closed_port}/token", "mail")
    with pytest.raises(oauth.ProviderUnreachable, match="could not be reached.*trying again later") as caught:
        oauth.refresh(oauth.SignInClient(down, client.client_id, client.client_secret, client.redirect_uri),
                      "some-refresh-token", LOCAL)
    assert caught.value.kind == "network" and "some-refresh-token" not in str(caught.value)


def test_short_lived_access_tokens_expire_and_refresh_is_then_due(oauth_server) -> None:
    client = local_client(oauth_server)
    user, password = oauth_server.new_user()
    oauth_server.access_token_lifetime_s = 120
    try:
        tokens = sign_in(oauth_server, client, user, password)
    finally:
        oauth_server.access_token_lifetime_s = 3600
    assert oauth.needs_refresh(tokens.expires_at)  # 2 minutes left is inside the margin
    minted = oauth_server.mint_access_token(user, client.client_id, expires_in_s=1)
    assert introspect(oauth_server, minted)["active"] is True
    time.sleep(1.1)
    assert introspect(oauth_server, minted) == {"active": False}
