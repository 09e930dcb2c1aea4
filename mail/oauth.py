"""Signing in to a mail provider with OAuth 2.0: the client side, on Authlib's OAuth2Client.

Google and Microsoft are built in (oauth_providers.toml beside this module); any other provider
is described by its endpoints and scopes. The flow is the authorization code grant with PKCE
(S256) and a `state`; refreshing returns the provider's new refresh token when it sends one
(Microsoft replaces it on every use), and the caller must save it in the same transaction.

Every connection to a token endpoint goes through the outbound guard (see mail/oauth_http.py).

Failures come out as MailError subclasses: SignInAgain (the provider refuses the saved grant:
stop polling, show "Sign in again"), ProviderUnreachable (network or a provider outage: retry
with the account's backoff), ProviderRefused (the client ID or secret is wrong: an
administrator's job) and SignInFailed (the user's sign-in did not complete). No token ever
appears in an exception, a repr or a log line.
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.client import OAuth2Client

from mail import errors, oauth_http
from mail.errors import MailError
from mail.oauth_http import Network

PROVIDERS_FILE = Path(__file__).with_name("oauth_providers.toml")
# Refresh this long before the access token expires (a poll must not start with a dying token).
REFRESH_MARGIN_S = 300
CODE_VERIFIER_BYTES = 64  # 86 characters, within PKCE's 43 to 128
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Provider:
    """An OAuth 2.0 provider: where to send the user and where to fetch tokens."""

    key: str
    name: str
    authorization_url: str
    token_url: str
    scopes: tuple[str, ...]
    extra_params: tuple[tuple[str, str], ...] = ()
    revocation_url: str = ""
    covers_smtp: bool = False
    mail_providers: tuple[str, ...] = ()  # entries of providers.toml signing in here
    token_auth_method: str = "client_secret_post"


@dataclass(frozen=True)
class SignInClient:
    """This CRM as registered with a provider by an administrator."""

    provider: Provider
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str = ""


@dataclass(frozen=True)
class Tokens:
    """What a token endpoint answered. refresh_token_rotated: a new refresh token came back
    and replaces the old one (save it in the same transaction as the access token)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None
    scope: str = ""
    refresh_token_rotated: bool = False


class OAuthError(MailError):
    """A sign-in or token failure, worded for the user; never holds a token."""


class SignInAgain(OAuthError):
    """The provider refused the saved grant (consent withdrawn, password changed, expired)."""

    def __init__(self, provider: Provider) -> None:
        super().__init__("auth", f"{provider.name} no longer accepts this account's sign-in (it was "
                                 "revoked, the password changed, or it expired). Sign in again.")


class ProviderUnreachable(OAuthError):
    """The token endpoint could not be reached or had an outage: try again with backoff."""

    def __init__(self, provider: Provider, reason: str) -> None:
        super().__init__("network", errors.sentence(
            f"{provider.name}'s sign-in service could not be reached: {reason.rstrip('.')}; "
            "trying again later"))


class ProviderRefused(OAuthError):
    """The provider refused this CRM itself (client ID, secret, scopes): an administrator's job."""

    def __init__(self, provider: Provider, code: str) -> None:
        super().__init__("protocol", f"{provider.name} refused the request ({code}): an "
                                     "administrator should check the client ID and secret under "
                                     "Sign-in providers.")


class SignInFailed(OAuthError):
    """The user's sign-in did not come back complete (cancelled, stale or forged)."""

    def __init__(self, message: str) -> None:
        super().__init__("auth", message)


def _load(path: Path) -> dict[str, Provider]:
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    return {key: Provider(key, e["name"], e["authorization_url"], e["token_url"], tuple(e["scopes"]),
                          tuple(e.get("extra_params", {}).items()), e.get("revocation_url", ""),
                          e.get("covers_smtp", False), tuple(e.get("mail_providers", ())))
            for key, e in table.items()}


BUILT_IN = _load(PROVIDERS_FILE)
GOOGLE, MICROSOFT = BUILT_IN["google"], BUILT_IN["microsoft"]


def generic_provider(name: str, authorization_url: str, token_url: str, scopes: str | list[str],
                     key: str = "custom", revocation_url: str = "", covers_smtp: bool = False) -> Provider:
    """A provider an administrator adds by its endpoints (Keycloak, the test server).

    Raises ValueError with a sentence if an endpoint is not an http(s) URL with a host.
    """
    for label, url in (("authorization", authorization_url), ("token", token_url),
                       ("revocation", revocation_url)):
        if url or label != "revocation":
            validate_endpoint(url, label)
    scope_list = scopes.split() if isinstance(scopes, str) else list(scopes)
    if not scope_list:
        raise ValueError("Enter at least one scope.")
    return Provider(key, name.strip(), authorization_url.strip(), token_url.strip(),
                    tuple(scope_list), (), revocation_url.strip(), covers_smtp)


def validate_endpoint(url: str, label: str = "token") -> str:
    """Return url if it is an https:// (or http://) URL with a host; else raise ValueError."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise ValueError(f"The {label} endpoint must be a web address starting with https://.")
    return url.strip()


@dataclass(frozen=True)
class SignInStart:
    """What to keep (in the user's session) between sending the user off and the callback."""

    url: str
    state: str
    code_verifier: str = field(repr=False)


def start_sign_in(client: SignInClient, login_hint: str | None = None) -> SignInStart:
    """Build the provider's authorization URL with a fresh state and a PKCE S256 challenge."""
    verifier = secrets.token_urlsafe(CODE_VERIFIER_BYTES)
    extra = dict(client.provider.extra_params)
    if login_hint:
        extra["login_hint"] = login_hint
    url, state = _authlib(client, None).create_authorization_url(
        client.provider.authorization_url, state=secrets.token_urlsafe(32),
        code_verifier=verifier, **extra)
    return SignInStart(url, state, verifier)


def finish_sign_in(client: SignInClient, started: SignInStart, callback: Mapping[str, str],
                   network: Network) -> Tokens:
    """Check the callback's state, then exchange its code (with the PKCE verifier) for tokens.

    callback holds the query parameters the provider sent the user back with.
    """
    if not hmac.compare_digest(str(callback.get("state", "")).encode(), started.state.encode()):
        raise SignInFailed("This sign-in has expired or did not start here. Start it again.")
    if callback.get("error"):
        if callback["error"] == "access_denied":
            raise SignInFailed(f"Access was not allowed at {client.provider.name}, so the "
                               "account was not connected.")
        raise SignInFailed(f"{client.provider.name} did not complete the sign-in ({_code(callback['error'])}).")
    if not callback.get("code"):
        raise SignInFailed(f"{client.provider.name} sent no authorization code back. Start again.")
    try:
        return _call(client, network, "authorization_code", lambda c: c.fetch_token(
            client.provider.token_url, grant_type="authorization_code", code=callback["code"],
            code_verifier=started.code_verifier), previous=None)
    except SignInAgain:  # invalid_grant here: the code was stale, used, or its verifier wrong
        raise SignInFailed(f"The sign-in at {client.provider.name} expired before it was "
                           "completed. Start it again.") from None


def refresh(client: SignInClient, refresh_token: str, network: Network) -> Tokens:
    """Get a new access token. The answer's refresh token is the new one if the provider
    rotated it (refresh_token_rotated), else the one given."""
    return _call(client, network, "refresh_token", lambda c: c.refresh_token(
        client.provider.token_url, refresh_token=refresh_token), previous=refresh_token)


def revoke(client: SignInClient, token: str, network: Network, hint: str = "refresh_token") -> bool:
    """Ask the provider to revoke token (RFC 7009). Returns False if it has no such endpoint."""
    if not client.provider.revocation_url:
        return False
    try:
        response = _authlib(client, network).revoke_token(
            client.provider.revocation_url, token=token, token_type_hint=hint)
    except oauth_http.Unreachable as exc:
        raise ProviderUnreachable(client.provider, exc.reason) from None
    return response.status_code < 400


def needs_refresh(expires_at: datetime | None, now: datetime | None = None,
                  margin_s: float = REFRESH_MARGIN_S) -> bool:
    """True if an access token expiring at expires_at should be refreshed before use."""
    if expires_at is None:
        return True
    now = now or datetime.now(timezone.utc)
    if expires_at.tzinfo is None:  # stored naive means UTC
        expires_at = expires_at.replace(tzinfo=timezone.utc)
    return expires_at - now <= timedelta(seconds=margin_s)


def _call(client: SignInClient, network: Network, grant: str,
          do: Callable[[OAuth2Client], dict], previous: str | None) -> Tokens:
    try:
        token = do(_authlib(client, network))
    except OAuth2Error as exc:
        log.info("%s refused a %s request: %s", client.provider.name, grant, _code(exc.error))
        if exc.error == "invalid_grant":
            raise SignInAgain(client.provider) from None
        raise ProviderRefused(client.provider, _code(exc.error)) from None
    except oauth_http.Unreachable as exc:
        log.info("%s token endpoint unreachable: %s", client.provider.name, exc.reason)
        raise ProviderUnreachable(client.provider, exc.reason) from None
    except (ValueError, KeyError):
        raise ProviderUnreachable(client.provider, "its answer was not a token") from None
    if not token.get("access_token"):
        raise ProviderUnreachable(client.provider, "its answer held no access token")
    expires_at = token.get("expires_at")
    new_refresh = token.get("refresh_token") or previous
    return Tokens(token["access_token"], new_refresh,
                  datetime.fromtimestamp(expires_at, timezone.utc) if expires_at else None,
                  token.get("scope", ""), bool(previous and new_refresh != previous))


def _code(error: object) -> str:
    """An OAuth error code safe to show: lower-case letters and underscores only."""
    text = str(error or "")
    return text if _ERROR_CODE.fullmatch(text) else "unknown_error"


def _authlib(client: SignInClient, network: Network | None) -> OAuth2Client:
    return OAuth2Client(oauth_http.GuardedSession(network), client_id=client.client_id,
                        client_secret=client.client_secret,
                        token_endpoint_auth_method=client.provider.token_auth_method,
                        revocation_endpoint_auth_method=client.provider.token_auth_method,
                        scope=" ".join(client.provider.scopes), redirect_uri=client.redirect_uri,
                        code_challenge_method="S256", token_endpoint=client.provider.token_url)
