"""Send Mail As: outgoing SMTP identities, tested before they are kept, then proven to be the user's.

Proof is a code mailed through the organisation's relay (never through the identity's own server,
which the user chose and could read whatever the address), or without a relay an administrator's
approval.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from mail import oauth, providers, signin
from mail.outbound import relay, smtp
from mail.context import MailContext
from mail.errors import MailError, TestReport
from mail.providers import Provider
from models import Approval, MailAccount, OrgSettings, SendAs, Security, User, db, normalise_address, utcnow

CODE_DIGITS = 6
CODE_TTL_S = 30 * 60
CODE_MAX_ATTEMPTS = 5


@dataclass
class IdentityInput:
    from_name: str
    from_address: str
    host: str
    port: int
    security: str
    username: str
    password: str


class VerifyError(ValueError):
    """A wrong, expired or exhausted ownership code; str() is the sentence for the form."""


def settings_for(ctx: MailContext, identity: IdentityInput | SendAs, password: str) -> smtp.SmtpSettings:
    return ctx.settings(identity, password)


def user_identities(user: User) -> list[SendAs]:
    return list(db.session.scalars(select(SendAs).where(SendAs.user_id == user.id).order_by(SendAs.id)))


def get_identity(user: User, identity_id: int) -> SendAs | None:
    """The user's own identity, or None: another user's does not exist for them."""
    return db.session.scalar(select(SendAs).where(SendAs.id == identity_id, SendAs.user_id == user.id))


def incoming_account_for(user: User, address: str) -> MailAccount | None:
    """The user's POP3 account of this address ("Use the same credentials as the incoming account")."""
    return db.session.scalar(select(MailAccount).where(
        MailAccount.user_id == user.id, MailAccount.email == address.strip().lower()).order_by(MailAccount.id))


def incoming_credentials(ctx: MailContext, user: User, address: str) -> tuple[str, str] | None:
    """Username and password of the user's POP3 account of this address, or None without one."""
    account = incoming_account_for(user, address)
    if account is None or account.signs_in:  # a sign-in's token is for POP3 alone: sign in here too
        return None
    return account.username, ctx.box.decrypt(account.password_encrypted)


def connection_settings(ctx: MailContext, identity: SendAs) -> smtp.SmtpSettings:
    """How to sign in to the identity's SMTP server now: its password, or an OAuth access token
    refreshed under the identity's refresh lease (mail.signin). Raises MailError, SecretError."""
    if not identity.signs_in:
        return ctx.settings(identity, ctx.box.decrypt(identity.password_encrypted))
    identity_id = identity.id
    try:
        token = signin.identity_token(ctx, identity_id)
    except MailError as e:
        if e.kind == "auth":  # the provider refused the saved sign-in: the list offers Sign in again
            db.session.rollback()
            db.session.execute(update(SendAs).where(SendAs.id == identity_id).values(last_error=str(e)))
            db.session.commit()
        raise
    return ctx.settings(db.session.get(SendAs, identity_id), token, oauth=True)


def test_signed_in(ctx: MailContext, data: IdentityInput, tokens: oauth.Tokens) -> TestReport:
    """Test the SMTP server with a fresh sign-in's access token (XOAUTH2); nothing is saved."""
    return smtp.test_identity(ctx.settings(data, tokens.access_token, oauth=True), ctx.policy_then_release())


def create_signed_in(ctx: MailContext, user: User, data: IdentityInput, provider_id: int,
                     tokens: oauth.Tokens) -> tuple[SendAs | None, TestReport]:
    """Test with the sign-in's token, then keep the identity (unverified) with its tokens, encrypted."""
    report = test_signed_in(ctx, data, tokens)
    if not report.ok:
        return None, report
    identity = SendAs(user_id=user.id, from_name=data.from_name, from_address=data.from_address.strip().lower(),
                      host=data.host.strip().lower(), port=data.port, security=Security(data.security),
                      username=data.username, password_encrypted="", verified=False, last_error="")
    signin.store_tokens(ctx, identity, provider_id, tokens)
    db.session.add(identity)
    db.session.commit()
    return identity, report


def sign_in_again(ctx: MailContext, identity: SendAs, provider_id: int, tokens: oauth.Tokens) -> TestReport:
    """Test with a new sign-in; if it works, keep its tokens in place of the old ones."""
    identity_id = identity.id
    data = IdentityInput(identity.from_name, identity.from_address, identity.host, identity.port,
                         identity.security.value, identity.username, "")
    report = test_signed_in(ctx, data, tokens)
    if report.ok:
        identity = db.session.get(SendAs, identity_id)
        signin.store_tokens(ctx, identity, provider_id, tokens)
        identity.last_error = ""
        db.session.commit()
    return report


def _hosted_server(address: str) -> Provider | None:
    """The organisation's own SMTP server (Setup's hosted domain) if the address is at that domain."""
    org = db.session.get(OrgSettings, 1)
    domain = normalise_address(address).rpartition("@")[2]
    if org is None or not org.hosted_smtp_host or not domain or domain != org.hosted_domain.lower():
        return None
    return Provider(org.hosted_domain, org.hosted_pop_host, org.hosted_pop_port, org.hosted_pop_security,
                    org.hosted_smtp_host, org.hosted_smtp_port, org.hosted_smtp_security)


def suggested_server(address: str) -> Provider | None:
    """The SMTP server the form fills in: the organisation's own for its hosted domain, else a provider's."""
    return _hosted_server(address) or providers.lookup(address)


def new_identity_defaults(user: User) -> dict:
    """What Add Send Mail As starts with: the user's own address and server when it is at the hosted domain."""
    hosted = _hosted_server(user.email)
    if hosted is None:
        return {}
    return {"from_name": user.name, "from_address": user.email, "host": hosted.smtp_host,
            "port": hosted.smtp_port, "security": hosted.smtp_security}


def test(ctx: MailContext, data: IdentityInput) -> TestReport:
    """Connect, EHLO, secure and sign in; nothing is saved. Ends the caller's transaction first."""
    return smtp.test_identity(settings_for(ctx, data, data.password), ctx.policy_then_release())


def create(ctx: MailContext, user: User, data: IdentityInput) -> tuple[SendAs | None, TestReport]:
    """Test, then keep the identity (unverified) and mail it an ownership code."""
    report = test(ctx, data)
    if not report.ok:
        return None, report
    identity = SendAs(user_id=user.id, from_name=data.from_name, from_address=data.from_address.strip().lower(),
                      host=data.host.strip().lower(), port=data.port, security=Security(data.security),
                      username=data.username, password_encrypted=ctx.box.encrypt(data.password),
                      verified=False, last_error="")
    db.session.add(identity)
    db.session.commit()
    return identity, report


def change_password(ctx: MailContext, identity: SendAs, password: str) -> TestReport:
    """Test the new outgoing password; it replaces the old one only if the server accepts it."""
    settings = settings_for(ctx, identity, password)
    report = smtp.test_identity(settings, ctx.policy_then_release())  # then a new transaction writes
    if report.ok:
        identity.password_encrypted = ctx.box.encrypt(password)
        identity.last_error = ""
        db.session.commit()
    return report


def start_proof(ctx: MailContext, identity: SendAs) -> bool:
    """Ask for proof that the address is the user's: True when a code went out through the relay,
    False when, without a relay, the address now waits for an administrator.

    Raises MailError when the relay refuses.
    """
    if relay.relay_configured():
        send_code(ctx, identity)
        return True
    if identity.approval is not Approval.DENIED:
        identity.approval = Approval.PENDING
        db.session.commit()
    return False


def send_code(ctx: MailContext, identity: SendAs) -> None:
    """Mail a fresh ownership code to the identity's address through the organisation's relay.

    Never through the identity's own server: its user chose that server and could read the code
    there whatever the address. Raises MailError without a relay or when it refuses; the identity
    keeps its old code then.
    """
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    message = EmailMessage()
    message["To"] = identity.from_address
    message["Subject"] = f"Your CRM verification code: {code}"
    message["Message-ID"] = make_msgid(domain=identity.from_address.rpartition("@")[2] or None)
    message.set_content(
        f"Someone (hopefully you) added {identity.from_address} as a Send Mail As address in the CRM.\n\n"
        f"Enter this code to confirm that the address is yours: {code}\n\n"
        f"The code expires in {CODE_TTL_S // 60} minutes. If this was not you, ignore this message.\n")
    relay.send_system_mail(ctx, message, identity.from_address)
    identity.code_hash = generate_password_hash(code)
    identity.code_sent_at = utcnow()
    identity.code_attempts = 0
    db.session.commit()


def verify(identity: SendAs, code: str) -> None:
    """Accept the typed code or raise VerifyError; a right code makes the address usable."""
    if identity.verified:
        return
    if not identity.code_hash or identity.code_sent_at is None:
        raise VerifyError("No code has been sent yet. Send a new code.")
    if utcnow() - identity.code_sent_at > timedelta(seconds=CODE_TTL_S):
        raise VerifyError("This code has expired. Send a new code.")
    if identity.code_attempts >= CODE_MAX_ATTEMPTS:
        raise VerifyError("Too many wrong codes. Send a new code.")
    if not check_password_hash(identity.code_hash, "".join(code.split())):
        identity.code_attempts += 1
        db.session.commit()
        raise VerifyError("That code is not right. Check the latest message and try again.")
    identity.verified = True
    identity.code_hash = ""
    db.session.commit()


def pending_approvals() -> list[SendAs]:
    """Addresses waiting for an administrator, oldest first, with their users."""
    return list(db.session.scalars(select(SendAs).options(joinedload(SendAs.user))
                                   .where(SendAs.approval == Approval.PENDING).order_by(SendAs.id)))


def get_pending(identity_id: int) -> SendAs | None:
    """A waiting address, or None: one already decided (or proven by code) is not up for a decision."""
    return db.session.scalar(select(SendAs).where(SendAs.id == identity_id, SendAs.approval == Approval.PENDING))


def decide(identity: SendAs, approve: bool, by: User) -> None:
    """An administrator's decision on a waiting address: approved, it is verified and can send."""
    identity.approval = Approval.APPROVED if approve else Approval.DENIED
    identity.verified = approve
    identity.code_hash = ""
    identity.approved_by_id = by.id
    identity.approval_decided_at = utcnow()
    db.session.commit()


def delete(identity: SendAs) -> None:
    db.session.delete(identity)
    db.session.commit()

