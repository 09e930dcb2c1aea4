"""A real OAuth 2.0 authorization server for the tests, built on Authlib's server side.

Served from a thread on a free loopback port: an authorization endpoint with a sign-in and
consent page, a token endpoint (authorization code with PKCE S256 required for every client,
refresh tokens rotated on every use), RFC 7662 introspection and RFC 7009 revocation.
Everything lives in memory behind one lock. Tests reach in through the methods below to add
users and clients, revoke a user's refresh tokens, or mint short-lived access tokens.
"""
from __future__ import annotations

import hmac
import html
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, request
from werkzeug.serving import make_server

LOOPBACK = "127.0.0.1"
CODE_LIFETIME_S = 60
DEFAULT_ACCESS_TOKEN_LIFETIME_S = 3600
TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
ACCESS_TOKEN_BYTES = 42  # Authlib's default length; tests may ask for Microsoft-sized ones


@dataclass
class User:
    username: str
    password: str

    def get_user_id(self) -> str:
        return self.username


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    scope: str
    # A resource server (Dovecot, the SMTP server) may introspect any client's tokens.
    resource_server: bool = False

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in (scope or self.scope).split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(self.client_secret.encode(), (client_secret or "").encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in TOKEN_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and not self.resource_server

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token") and not self.resource_server


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    issued_at: float = field(default_factory=time.time)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() > self.issued_at + CODE_LIFETIME_S


@dataclass
class Token(TokenMixin):
    """One access token or one refresh token (kind says which)."""

    kind: str
    value: str
    client_id: str
    username: str
    scope: str
    expires_in: int = 0  # 0: never expires (refresh tokens)
    issued_at: float = field(default_factory=time.time)
    revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id or client.resource_server

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return bool(self.expires_in) and time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str:
        return self.username

    def get_client(self) -> str:
        return self.client_id


class RequiredS256(CodeChallenge):
    """PKCE with S256 for every client, confidential ones too (Authlib requires it only for
    public clients): the CRM always sends it, and a test must fail if it ever stops."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):  # noqa: ANN001 (Authlib's hook)
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        return super().validate_code_challenge(grant, redirect_uri)


class OAuthServer:
    """The authorization server: start() serves it on .url; stop() ends it."""

    host = LOOPBACK

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, Token] = {}  # by value, access and refresh alike
        self.access_token_lifetime_s = DEFAULT_ACCESS_TOKEN_LIFETIME_S
        self.access_token_bytes = ACCESS_TOKEN_BYTES
        # (grant_type, client_id, outcome status) per token endpoint call
        self.token_requests: list[tuple[str, str, int]] = []
        self.introspections: list[tuple[str, bool]] = []  # (introspecting client, active)
        self._serial = itertools.count()
        self.app = self._make_app()
        self._http = make_server(LOOPBACK, 0, self.app, threaded=True)
        self.port = self._http.server_port
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        resource = self.register_client(client_id="resource-server", resource_server=True)
        self.resource_server = resource

    # --- endpoints -----------------------------------------------------------------------

    @property
    def authorization_url(self) -> str:
        return self.url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def introspection_url(self) -> str:
        return self.url + "/introspect"

    @property
    def revocation_url(self) -> str:
        return self.url + "/revoke"

    def introspection_url_with_credentials(self) -> str:
        """The introspection URL with the resource server's credentials in it (Dovecot's form)."""
        rs = self.resource_server
        return f"http://{rs.client_id}:{rs.client_secret}@{LOOPBACK}:{self.port}/introspect"

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> OAuthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what tests set up and change ----------------------------------------------------

    def add_user(self, username: str, password: str) -> User:
        with self.lock:
            self.users[username] = User(username, password)
            return self.users[username]

    def new_user(self, prefix: str = "oauthuser") -> tuple[str, str]:
        name, password = f"{prefix}{next(self._serial)}", f"pw-{secrets.token_hex(8)}"
        self.add_user(name, password)
        return name, password

    def register_client(self, client_id: str | None = None, client_secret: str | None = None,
                        redirect_uris: tuple[str, ...] | list[str] = (), scope: str = "mail",
                        resource_server: bool = False) -> Client:
        """Register a client (or replace one with the same id) and return it."""
        client = Client(client_id or f"client-{next(self._serial)}",
                        client_secret or secrets.token_urlsafe(24), tuple(redirect_uris), scope,
                        resource_server)
        with self.lock:
            self.clients[client.client_id] = client
        return client

    def revoke_user(self, username: str, access_tokens: bool = False) -> int:
        """Revoke every refresh token of username (consent withdrawn, password changed);
        its access tokens too if asked. Returns how many tokens were revoked."""
        with self.lock:
            hit = [t for t in self.tokens.values() if t.username == username and not t.revoked
                   and (t.kind == "refresh" or access_tokens)]
            for token in hit:
                token.revoked = True
            return len(hit)

    def mint_access_token(self, username: str, client_id: str, scope: str = "mail",
                          expires_in_s: int = DEFAULT_ACCESS_TOKEN_LIFETIME_S) -> str:
        """Issue an access token directly (no flow), e.g. one that expires in a second."""
        value = secrets.token_urlsafe(self.access_token_bytes)
        with self.lock:
            self.tokens[value] = Token("access", value, client_id, username, scope, expires_in_s)
        return value

    def live_refresh_tokens(self, username: str) -> list[str]:
        with self.lock:
            return [t.value for t in self.tokens.values()
                    if t.kind == "refresh" and t.username == username and not t.revoked]

    # --- storage used by the grants and endpoints ----------------------------------------

    def _query_client(self, client_id: str) -> Client | None:
        with self.lock:
            return self.clients.get(client_id)

    def _save_token(self, token: dict, oauth_request) -> None:  # noqa: ANN001
        client, user = oauth_request.client, oauth_request.user
        with self.lock:
            self.tokens[token["access_token"]] = Token(
                "access", token["access_token"], client.client_id, user.username,
                token.get("scope", ""), int(token.get("expires_in", 0)))
            if token.get("refresh_token"):
                self.tokens[token["refresh_token"]] = Token(
                    "refresh", token["refresh_token"], client.client_id, user.username,
                    token.get("scope", ""))

    def _find_token(self, value: str, hint: str | None, kind: str | None = None) -> Token | None:
        with self.lock:
            token = self.tokens.get(value)
        if token is None or (kind and token.kind != kind):
            return None
        return token

    def _user(self, username: str) -> User | None:
        with self.lock:
            return self.users.get(username)

    # --- the Flask app -------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask(f"oauth-test-server-{id(self)}")
        app.config["SECRET_KEY"] = secrets.token_hex(16)
        authz = AuthorizationServer(app, query_client=self._query_client, save_token=self._save_token)
        authz.register_token_generator("default", BearerTokenGenerator(
            lambda **_: secrets.token_urlsafe(self.access_token_bytes),
            lambda **_: secrets.token_urlsafe(48),
            lambda client, grant_type: self.access_token_lifetime_s))
        authz.register_grant(_code_grant(self), [RequiredS256(required=True)])
        authz.register_grant(_refresh_grant(self))
        authz.register_endpoint(_introspection(self))
        authz.register_endpoint(_revocation(self))

        @app.route("/authorize", methods=["GET", "POST"])
        def authorize():
            try:
                grant = authz.get_consent_grant(end_user=None)
            except OAuth2Error as error:
                return f"<p>{html.escape(error.error)}: {html.escape(error.description or '')}</p>", 400
            if request.method == "GET":
                return _consent_page(grant.client, grant.request.payload.scope or "", "")
            if "allow" not in request.form:
                return authz.create_authorization_response(grant_user=None, grant=grant)
            user = self._user(request.form.get("username", ""))
            if user is None or not hmac.compare_digest(user.password.encode(),
                                                       request.form.get("password", "").encode()):
                return _consent_page(grant.client, grant.request.payload.scope or "",
                                     "Wrong user name or password."), 401
            return authz.create_authorization_response(grant_user=user, grant=grant)

        @app.post("/token")
        def token():
            response = authz.create_token_response()
            with self.lock:
                self.token_requests.append((request.form.get("grant_type", ""),
                                            request.authorization.username if request.authorization
                                            else request.form.get("client_id", ""),
                                            response.status_code))
            return response

        @app.post("/introspect")
        def introspect():
            return authz.create_endpoint_response("introspection")

        @app.post("/revoke")
        def revoke():
            return authz.create_endpoint_response("revocation")

        return app


def _consent_page(client: Client, scope: str, error: str) -> str:
    """The sign-in and consent form; it posts back to the same URL (query string included)."""
    problem = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to the test provider</title></head>
<body><main><h1>Sign in to the test provider</h1>
<p><strong>{html.escape(client.client_id)}</strong> wants access to: {html.escape(scope)}</p>
{problem}
<form method="post">
<label for="username">User name</label> <input id="username" name="username" autocomplete="username">
<label for="password">Password</label> <input id="password" name="password" type="password">
<button type="submit" name="allow" value="1">Allow</button>
<button type="submit" name="deny" value="1">Deny</button>
</form></main></body></html>"""


def _code_grant(server: OAuthServer) -> type:
    class CodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

        def save_authorization_code(self, code, request):  # noqa: ANN001
            data = request.payload.data
            item = AuthorizationCode(code, request.client.client_id, request.user.username,
                                     request.payload.redirect_uri, request.scope or "",
                                     data.get("code_challenge"), data.get("code_challenge_method"))
            with server.lock:
                server.codes[code] = item

        def query_authorization_code(self, code, client):  # noqa: ANN001
            with server.lock:
                item = server.codes.get(code)
            if item and item.client_id == client.client_id and not item.is_expired():
                return item
            return None

        def delete_authorization_code(self, authorization_code):  # noqa: ANN001
            with server.lock:
                server.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code):  # noqa: ANN001
            return server._user(authorization_code.username)

    return CodeGrant


def _refresh_grant(server: OAuthServer) -> type:
    class RotatingRefreshGrant(grants.RefreshTokenGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
        INCLUDE_NEW_REFRESH_TOKEN = True  # rotation, as Microsoft does on every use

        def authenticate_refresh_token(self, refresh_token):  # noqa: ANN001
            token = server._find_token(refresh_token, "refresh_token", kind="refresh")
            return token if token and not token.is_revoked() else None

        def authenticate_user(self, refresh_token):  # noqa: ANN001
            return server._user(refresh_token.username)

        def revoke_old_credential(self, refresh_token):  # noqa: ANN001
            with server.lock:
                refresh_token.revoked = True

    return RotatingRefreshGrant


def _introspection(server: OAuthServer) -> type:
    class Introspection(IntrospectionEndpoint):
        CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

        def query_token(self, token_string, token_type_hint):  # noqa: ANN001
            return server._find_token(token_string, token_type_hint)

        def check_permission(self, token, client, request):  # noqa: ANN001
            return client.resource_server or token.client_id == client.client_id

        def introspect_token(self, token):  # noqa: ANN001
            return {"active": True, "client_id": token.client_id, "token_type": "Bearer",
                    "username": token.username, "sub": token.username, "scope": token.scope,
                    "iat": int(token.issued_at),
                    "exp": int(token.issued_at + token.expires_in) if token.expires_in else None}

        def create_introspection_payload(self, token):  # noqa: ANN001
            payload = super().create_introspection_payload(token)
            with server.lock:
                server.introspections.append((request.authorization.username
                                              if request.authorization else "",
                                              bool(payload.get("active"))))
            return {k: v for k, v in payload.items() if v is not None}

    return Introspection


def _revocation(server: OAuthServer) -> type:
    class Revocation(RevocationEndpoint):
        CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

        def query_token(self, token_string, token_type_hint):  # noqa: ANN001
            return server._find_token(token_string, token_type_hint)

        def revoke_token(self, token, request):  # noqa: ANN001
            with server.lock:
                token.revoked = True

    return Revocation
