"""Send Mail As: outgoing SMTP identities, tested before they are kept, verified by a mailed code."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from mail.outbound import smtp
from mail.context import MailContext
from mail.errors import TestReport
from models import MailAccount, SendAs, Security, User, db, utcnow

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


def send_code(ctx: MailContext, identity: SendAs) -> None:
    """Mail a fresh ownership code to the identity's address through its own SMTP server.

    Raises MailError when the server refuses; the identity keeps its old code then.
    """
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    message = EmailMessage()
    message["From"] = formataddr((identity.from_name, identity.from_address))
    message["To"] = identity.from_address
    message["Subject"] = f"Your CRM verification code: {code}"
    message["Message-ID"] = make_msgid(domain=identity.from_address.rpartition("@")[2] or None)
    message.set_content(
        f"Someone (hopefully you) added {identity.from_address} as a Send Mail As address in the CRM.\n\n"
        f"Enter this code to confirm that the address is yours: {code}\n\n"
        f"The code expires in {CODE_TTL_S // 60} minutes. If this was not you, ignore this message.\n")
    settings, to = settings_for(ctx, identity, ctx.box.decrypt(identity.password_encrypted)), identity.from_address
    smtp.send(settings, ctx.policy_then_release(), message, [to])
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


def delete(identity: SendAs) -> None:
    db.session.delete(identity)
    db.session.commit()

