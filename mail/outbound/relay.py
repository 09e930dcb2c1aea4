"""The organisation's outgoing relay: the SMTP server that system mail (ownership codes) goes through.

Only an administrator sets it (Setup > Apps & Add-ons > Mail Add-on). A Send Mail As code mailed
through it reaches only whoever can read the address; one mailed through the server the user
typed in could be read by that user whatever the address.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage

from mail.context import MailContext
from mail.errors import MailError, TestReport
from mail.org import org_settings_for_update
from mail.outbound import smtp
from models import OrgSettings, db

NO_RELAY_MESSAGE = ("Your organisation has no outgoing relay, so the CRM cannot mail you a code: "
                    "an administrator approves each new Send Mail As address instead.")


@dataclass
class RelayInput:
    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)  # empty: keep the stored one
    from_address: str = ""


def relay_configured() -> bool:
    """Whether system mail has a relay (host and From address); reads, never writes."""
    org = db.session.get(OrgSettings, 1)
    return bool(org and org.relay_host and org.relay_from_address)


def current() -> RelayInput | None:
    """The relay as the form shows it: everything but the password, which is never shown back."""
    org = db.session.get(OrgSettings, 1)
    if org is None or not org.relay_host:
        return None
    return RelayInput(host=org.relay_host, port=org.relay_port, security=org.relay_security,
                      username=org.relay_username, password="", from_address=org.relay_from_address)


def has_password() -> bool:
    org = db.session.get(OrgSettings, 1)
    return bool(org and org.relay_password_encrypted)


def _settings(ctx: MailContext, data: RelayInput) -> smtp.SmtpSettings:
    """SMTP settings for data; a blank password means the stored one (a secret is typed once)."""
    password = data.password
    if not password and data.username:
        org = db.session.get(OrgSettings, 1)
        if org is not None and org.relay_password_encrypted:
            password = ctx.box.decrypt(org.relay_password_encrypted)
    return ctx.settings(data, password)


def test(ctx: MailContext, data: RelayInput) -> TestReport:
    """Connect, EHLO, secure and sign in, step by step; nothing is saved."""
    return smtp.test_identity(_settings(ctx, data), ctx.policy_then_release())


def save(ctx: MailContext, data: RelayInput) -> TestReport:
    """Test the relay, then keep it (the password encrypted) only if it worked."""
    settings = _settings(ctx, data)
    report = smtp.test_identity(settings, ctx.policy_then_release())
    if not report.ok:
        return report
    org = org_settings_for_update()
    org.relay_host, org.relay_port, org.relay_security = settings.host.strip().lower(), settings.port, settings.security
    org.relay_username, org.relay_from_address = settings.username, data.from_address.strip().lower()
    org.relay_password_encrypted = ctx.box.encrypt(settings.password) if settings.username else ""
    db.session.commit()
    return report


def remove() -> None:
    """Forget the relay and its password; new Send Mail As addresses wait for an administrator again."""
    org = org_settings_for_update()
    org.relay_host = org.relay_username = org.relay_password_encrypted = org.relay_from_address = ""
    db.session.commit()


def send_system_mail(ctx: MailContext, message: EmailMessage, recipient: str) -> None:
    """Send message from the relay's From address to recipient.

    Raises MailError when there is no relay or the relay refuses.
    """
    data = current()
    if data is None or not data.from_address:
        raise MailError("destination", NO_RELAY_MESSAGE)
    del message["From"]
    message["From"] = data.from_address
    smtp.send(_settings(ctx, data), ctx.policy_then_release(), message, [recipient])
