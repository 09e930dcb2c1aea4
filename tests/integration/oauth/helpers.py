"""Driving a sign-in against the test authorization server, as a person at its consent page."""
from __future__ import annotations

import urllib.parse

from mail import oauth
from mail.guard import GuardPolicy
from tests.oauth_server import OAuthServer

REDIRECT = "http://127.0.0.1:5000/mail/oauth/callback"
LOCAL = oauth.Network(GuardPolicy(allow_local=True), timeout_s=3)


def local_client(idp: OAuthServer, scope: str = "mail") -> oauth.SignInClient:
    """Register the CRM with idp and return it as the CRM's side sees it."""
    registered = idp.register_client(redirect_uris=[REDIRECT], scope=scope)
    provider = oauth.generic_provider("Test provider", idp.authorization_url, idp.token_url, scope,
                                      revocation_url=idp.revocation_url)
    return oauth.SignInClient(provider, registered.client_id, registered.client_secret, REDIRECT)


def consent(idp: OAuthServer, url: str, username: str, password: str, decision: str = "allow") -> str:
    """Open the consent page at url, sign in and decide; return where the provider redirects."""
    parts = urllib.parse.urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    browser = idp.app.test_client()
    page = browser.get(path)
    assert page.status_code == 200, page.data
    assert b'<form method="post">' in page.data and b">Allow</button>" in page.data
    answer = browser.post(path, data={"username": username, "password": password, decision: "1"})
    assert answer.status_code == 302, answer.data
    return answer.headers["Location"]


def callback_args(location: str) -> dict[str, str]:
    assert location.startswith(REDIRECT + "?")
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def sign_in(idp: OAuthServer, client: oauth.SignInClient, username: str, password: str) -> oauth.Tokens:
    """The whole flow: authorization URL, consent, callback, code exchange over HTTP."""
    start = oauth.start_sign_in(client)
    location = consent(idp, start.url, username, password)
    return oauth.finish_sign_in(client, start, callback_args(location), LOCAL)
