"""Sign in with Google, Microsoft or a provider an administrator added: the organisation's
sign-in providers, which of them an address is offered, and the tokens of mail accounts and
Send Mail As addresses.

A provider's client ID and secret, and every access and refresh token, are stored encrypted
(mail.secrets) and decrypted only for a request to the provider or a mail server.

Refreshing: an access token is refreshed when it expires within oauth.REFRESH_MARGIN_S, and the
answer (the access token, its expiry and the refresh token when the provider sent a new one) is
saved in one commit. Two workers must never refresh one token at once (Microsoft rotates the
refresh token on every use: the second would spend a spent one and lose the sign-in): a mail
account is refreshed only by the poll holding its lease (mail.inbound.leases); a Send Mail As
address, used outside any poll, takes a short refresh lease of its own (refresh_lease_until).
No transaction is open while the token endpoint answers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select, update

from mail import oauth, providers
from mail.context import MailContext
from mail.errors import MailError
from mail.oauth_http import Network
from mail.secrets import SecretError
from models import MailAccount, SendAs, SignInProvider, db, normalise_address, utcnow

REFRESH_LEASE_S = 30  # longer than a token request may take (oauth_http.TOKEN_TIMEOUT_S)
LEASE_WAIT_STEP_S = 0.2
PROVIDER_GONE = ("The sign-in provider of this address is no longer set up; an administrator can set it "
                 "up again under Setup > Mail Add-on > Sign-in providers.")
NO_GRANT = "This address has no saved sign-in. Sign in again."
BUSY = "Another process is renewing this address's sign-in; try again in a moment."

Holder = MailAccount | SendAs


@dataclass
class GenericInput:
    """A provider an administrator adds by its endpoints (Keycloak, a test server)."""

    name: str
    authorization_url: str
    token_url: str
    scopes: str
    client_id: str
    client_secret: str
    revocation_url: str = ""
    domains: str = ""
    covers_smtp: bool = False


def network(ctx: MailContext) -> Network:
    """How to reach token endpoints now: through the guard, as mail servers are."""
    return Network(ctx.policy(), timeout_s=ctx.timeout_s, cafile=ctx.cafile)


def provider_of(row: SignInProvider) -> oauth.Provider:
    """The protocol's view of a provider row: a built-in one's published endpoints, else the row's."""
    if row.key in oauth.BUILT_IN:
        return oauth.BUILT_IN[row.key]
    return oauth.generic_provider(row.name, row.authorization_url, row.token_url, row.scopes, key=row.key,
                                  revocation_url=row.revocation_url, covers_smtp=row.covers_smtp)


def is_configured(row: SignInProvider | None) -> bool:
    return bool(row and row.client_id_encrypted and row.client_secret_encrypted)


def built_in_rows() -> list[tuple[oauth.Provider, SignInProvider | None]]:
    """Google and Microsoft, each with its row if an administrator has set it up."""
    rows = {r.key: r for r in db.session.scalars(select(SignInProvider).where(
        SignInProvider.key.in_(list(oauth.BUILT_IN))))}
    return [(provider, rows.get(key)) for key, provider in oauth.BUILT_IN.items()]


def generic_rows() -> list[SignInProvider]:
    return list(db.session.scalars(select(SignInProvider).where(
        SignInProvider.key.not_in(list(oauth.BUILT_IN))).order_by(SignInProvider.id)))


def get_provider(provider_id: int) -> SignInProvider | None:
    return db.session.get(SignInProvider, provider_id)


def save_built_in(ctx: MailContext, key: str, client_id: str, client_secret: str) -> SignInProvider:
    """Set Google's or Microsoft's client ID and secret; a blank one keeps what is saved. Commits."""
    row = db.session.scalar(select(SignInProvider).where(SignInProvider.key == key))
    if row is None:
        row = SignInProvider(key=key, name=oauth.BUILT_IN[key].name, covers_smtp=oauth.BUILT_IN[key].covers_smtp)
        db.session.add(row)
    _set_client(ctx, row, client_id, client_secret)
    db.session.commit()
    return row


def add_generic(ctx: MailContext, data: GenericInput) -> SignInProvider:
    """Add a provider by its endpoints. Raises ValueError with a sentence if one is not a web address."""
    checked = oauth.generic_provider(data.name, data.authorization_url, data.token_url, data.scopes,
                                     revocation_url=data.revocation_url, covers_smtp=data.covers_smtp)
    row = SignInProvider(key="custom", name=checked.name, authorization_url=checked.authorization_url,
                         token_url=checked.token_url, revocation_url=checked.revocation_url,
                         scopes=" ".join(checked.scopes), covers_smtp=data.covers_smtp,
                         domains="\n".join(_domains(data.domains)))
    _set_client(ctx, row, data.client_id, data.client_secret)
    db.session.add(row)
    db.session.flush()
    row.key = f"custom-{row.id}"
    db.session.commit()
    return row


def remove(row: SignInProvider) -> None:
    """Remove a provider; addresses signed in with it then ask their owners to sign in again. Commits."""
    db.session.delete(row)
    db.session.commit()


def _set_client(ctx: MailContext, row: SignInProvider, client_id: str, client_secret: str) -> None:
    if client_id.strip():
        row.client_id_encrypted = ctx.box.encrypt(client_id.strip())
    if client_secret:
        row.client_secret_encrypted = ctx.box.encrypt(client_secret)


def _domains(text: str) -> list[str]:
    return [d.strip().lstrip("@").lower() for d in text.replace(",", "\n").split() if d.strip()]


def client(ctx: MailContext, row: SignInProvider, redirect_uri: str) -> oauth.SignInClient:
    """This CRM as registered with the provider. Raises MailError if it is not set up (any more)."""
    if not is_configured(row):
        raise MailError("auth", PROVIDER_GONE)
    try:
        return oauth.SignInClient(provider_of(row), ctx.box.decrypt(row.client_id_encrypted),
                                  ctx.box.decrypt(row.client_secret_encrypted), redirect_uri)
    except (SecretError, ValueError):
        raise MailError("auth", PROVIDER_GONE) from None


def offers(address: str, smtp: bool = False) -> list[SignInProvider]:
    """The set-up providers an address may sign in with: Google or Microsoft for their own
    addresses, a generic one for the domains it names (any address when it names none); with
    smtp, only those whose scopes cover sending."""
    mail_provider = providers.lookup(address or "")
    domain = normalise_address(address).rpartition("@")[2]
    found = []
    for row in db.session.scalars(select(SignInProvider).order_by(SignInProvider.id)):
        if not is_configured(row) or (smtp and not row.covers_smtp):
            continue
        if row.key in oauth.BUILT_IN:
            if mail_provider and mail_provider.key in oauth.BUILT_IN[row.key].mail_providers:
                found.append(row)
        elif not row.domains or domain in row.domains.split():
            found.append(row)
    return found


def built_in_for(address: str) -> oauth.Provider | None:
    """Google or Microsoft if the address is theirs (set up here or not)."""
    mail_provider = providers.lookup(address or "")
    return next((p for p in oauth.BUILT_IN.values() if mail_provider and mail_provider.key in p.mail_providers), None)


def store_tokens(ctx: MailContext, holder: Holder, provider_id: int, tokens: oauth.Tokens) -> None:
    """Put a sign-in's tokens on an account or address, encrypted (the caller commits)."""
    holder.sign_in_provider_id = provider_id
    holder.access_token_encrypted = ctx.box.encrypt(tokens.access_token)
    if tokens.refresh_token:
        holder.refresh_token_encrypted = ctx.box.encrypt(tokens.refresh_token)
    holder.token_expires_at = tokens.expires_at
    holder.password_encrypted = ""


def account_token(ctx: MailContext, account: MailAccount) -> str:
    """A usable access token for a mail account, refreshed first if it is about to expire.

    Only the poll holding the account's lease calls this, so no other refresh of it runs. Ends the
    caller's transaction. Raises MailError: oauth.SignInAgain ('auth') when the provider refuses the
    saved grant, oauth.ProviderUnreachable ('network') to retry with backoff.
    """
    if account.access_token_encrypted and not oauth.needs_refresh(account.token_expires_at):
        return _decrypt(ctx, account.access_token_encrypted)
    return _refresh(ctx, MailAccount, account.id)


def identity_token(ctx: MailContext, identity_id: int, wait_s: float = REFRESH_LEASE_S) -> str:
    """A usable access token for a Send Mail As address, refreshed under its refresh lease.

    A refresh already running elsewhere is waited for (at most wait_s), and its token used.
    Raises MailError as account_token does.
    """
    deadline = time.monotonic() + wait_s
    while True:
        identity = db.session.get(SendAs, identity_id)
        if identity is None:
            raise MailError("auth", NO_GRANT)
        if identity.access_token_encrypted and not oauth.needs_refresh(identity.token_expires_at):
            return _decrypt(ctx, identity.access_token_encrypted)
        if _take_refresh_lease(identity_id):
            try:
                return _refresh(ctx, SendAs, identity_id)
            finally:
                db.session.rollback()
                db.session.execute(update(SendAs).where(SendAs.id == identity_id).values(refresh_lease_until=None))
                db.session.commit()
        if time.monotonic() >= deadline:
            raise MailError("network", BUSY)
        time.sleep(LEASE_WAIT_STEP_S)
        db.session.expire_all()


def _take_refresh_lease(identity_id: int) -> bool:
    now = utcnow()
    taken = db.session.execute(
        update(SendAs).where(SendAs.id == identity_id,
                             or_(SendAs.refresh_lease_until.is_(None), SendAs.refresh_lease_until < now))
        .values(refresh_lease_until=now + timedelta(seconds=REFRESH_LEASE_S)),
        execution_options={"synchronize_session": False}).rowcount == 1
    db.session.commit()
    return taken


def _refresh(ctx: MailContext, model: type[MailAccount] | type[SendAs], holder_id: int) -> str:
    holder = db.session.get(model, holder_id)
    if holder is None or not holder.refresh_token_encrypted:
        raise MailError("auth", NO_GRANT)
    row = holder.sign_in_provider
    sign_in = client(ctx, row, "")
    provider_id = row.id
    refresh_token = _decrypt(ctx, holder.refresh_token_encrypted)
    net = Network(ctx.policy_then_release(), timeout_s=ctx.timeout_s, cafile=ctx.cafile)
    tokens = oauth.refresh(sign_in, refresh_token, net)  # no transaction open while it answers
    holder = db.session.get(model, holder_id)
    if holder is None:
        raise MailError("auth", NO_GRANT)
    store_tokens(ctx, holder, provider_id, tokens)  # a rotated refresh token in the same commit
    db.session.commit()
    return tokens.access_token


def _decrypt(ctx: MailContext, value: str) -> str:
    try:
        return ctx.box.decrypt(value)
    except SecretError:
        raise MailError("auth", "The saved sign-in could not be decrypted. Sign in again.") from None
