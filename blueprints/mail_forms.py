"""Forms of Settings > Mail (Add POP3 Account, Send Mail As, password changes) and of Setup's Mail Add-on."""
from __future__ import annotations

import ipaddress
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wtforms import (BooleanField, EmailField, IntegerField, PasswordField, RadioField, SelectField, StringField,
                     TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, NumberRange, Optional, ValidationError

from blueprints.forms import HumaneForm, Length, email_address
from mail.guard import validate_allowed_entry
from mail.oauth import validate_endpoint
from mail.inbound import pop3
from mail.outbound import smtp

SECURITY_CHOICES = [SelectChoice("ssl", "SSL/TLS"), SelectChoice("starttls", "STARTTLS"), SelectChoice("none", "None")]
LEAVE, DELETE = "leave", "delete"
POP3_PORTS, SMTP_PORTS = pop3.DEFAULT_PORTS, smtp.DEFAULT_PORTS  # a security's usual port, filled in the browser
# Which field a failed test points at, by MailError kind: that field is marked and focused.
FAULT_FIELDS = {"host_not_found": "host", "destination": "host", "network": "host", "timeout": "host",
                "refused": "port", "tls": "security", "certificate": "security", "auth": "password"}
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def mark_fault(form, report) -> None:
    """After a failed Test: the field at fault says so to assistive technology and takes focus."""
    name = FAULT_FIELDS.get(report.error.kind) if report is not None and report.error is not None else None
    if name and name in form and not form[name].errors:
        form[name].render_kw = {**(form[name].render_kw or {}), "aria-invalid": "true",
                                "aria-describedby": "test-result", "autofocus": True}


def _strip(value):
    """Trimmed text; a field missing from the request is empty text, never None."""
    return value.strip() if isinstance(value, str) else ("" if value is None else value)


def validate_host(form, field) -> None:
    """A server name or an IP address: not a URL, no spaces, no port."""
    host = (field.data or "").strip()
    if "://" in host or "/" in host:
        raise ValidationError("Enter only the server name, like pop.example.com, not a URL.")
    if any(c.isspace() for c in host):
        raise ValidationError("A server name cannot contain spaces.")
    if ":" in host and not host.startswith("["):
        try:
            ipaddress.IPv6Address(host)
            return
        except ValueError:
            raise ValidationError("Enter the port in the Port field, not after the server name.") from None
    try:
        ipaddress.ip_address(host.strip("[]"))
        return
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValidationError("This is not a valid server name.")


def _set(field, value) -> None:
    """Change a bound field's value so that it also renders (number fields render raw input)."""
    field.data = value
    field.raw_data = [str(value)]


def _port_field(label: str = "Port", default: int | None = None) -> IntegerField:
    return IntegerField(label, default=default, validators=[InputRequired("Enter the port."),
                                           NumberRange(1, 65535, "The port must be between 1 and 65535.")])


class Pop3AccountForm(HumaneForm):
    """Add POP3 Account."""

    name = StringField("Account Name", validators=[DataRequired("Name the account, like Work."), Length(max=80)],
                       filters=[_strip])
    email = EmailField("Email Address", validators=[DataRequired("Enter the account's email address."), Length(max=254),
                                                    email_address()],
                       filters=[_strip])
    host = StringField("Incoming Server", validators=[DataRequired("Enter the incoming server, like pop.example.com."),
                                                      Length(max=253), validate_host], filters=[_strip])
    port = _port_field(default=pop3.DEFAULT_PORTS["ssl"])
    security = SelectField("Security", choices=SECURITY_CHOICES, default="ssl")
    username = StringField("Username", validators=[DataRequired("Enter the username, often the email address."),
                                                Length(max=254)], filters=[_strip])
    password = PasswordField("Password", validators=[DataRequired("Enter the account's password."), Length(max=256)])
    leave = RadioField("Delete message settings", choices=[SelectChoice(LEAVE, "Leave messages in the server"),
                                                           SelectChoice(DELETE, "Delete messages from the server")], default=LEAVE)

    def fill_defaults(self, provider, apply_gmail: bool) -> None:
        """What the form fills in by itself: the provider's server, the security's usual port."""
        if provider and not provider.blocked and not self.host.data:
            _set(self.host, provider.pop_host), _set(self.port, provider.pop_port), _set(self.security, provider.pop_security)
        if self.security.data in pop3.DEFAULT_PORTS and (
                not self.port.data or self.port.data in pop3.DEFAULT_PORTS.values()):
            _set(self.port, pop3.DEFAULT_PORTS[self.security.data])
        if self.email.data and not self.username.data:
            _set(self.username, self.email.data)
        if apply_gmail and self.email.data:
            # The seed's Gmail note: with several POP clients, recent: and leave on the server.
            _set(self.username, "recent:" + self.email.data)
            _set(self.leave, LEAVE)


class SignInAccountForm(Pop3AccountForm):
    """Add POP3 Account with "Sign in with ...": everything but the password, which the sign-in replaces."""

    password = PasswordField("Password", validators=[Optional(), Length(max=256)])


class PasswordChangeForm(HumaneForm):
    """Change the incoming or outgoing password: tested before it is kept."""

    password = PasswordField("New password", validators=[DataRequired("Enter the new password."), Length(max=256)])


class HostedAccountForm(HumaneForm):
    """The organisation's own mailbox: only the password to type."""

    password = PasswordField("Password", validators=[DataRequired("Enter the mailbox's password."), Length(max=256)])


class SendAsForm(HumaneForm):
    """Send Mail As: an outgoing SMTP identity."""

    from_name = StringField("From name", validators=[DataRequired("Enter the name your customers see."),
                                                     Length(max=120)], filters=[_strip])
    from_address = EmailField("From address", validators=[DataRequired("Enter the address you send from."),
                                                          Length(max=254), email_address()],
                              filters=[_strip])
    host = StringField("SMTP server", validators=[DataRequired("Enter the SMTP server, like smtp.example.com."),
                                                  Length(max=253), validate_host], filters=[_strip])
    port = _port_field(default=smtp.DEFAULT_PORTS["starttls"])
    security = SelectField("Security", choices=SECURITY_CHOICES, default="starttls")
    use_incoming = BooleanField("Use the same credentials as the incoming account")
    username = StringField("Username", validators=[Length(max=254)], filters=[_strip])
    password = PasswordField("Password", validators=[Length(max=256)])

    def fill_defaults(self, provider) -> None:
        if provider and not provider.blocked and not self.host.data:
            _set(self.host, provider.smtp_host), _set(self.port, provider.smtp_port), _set(self.security, provider.smtp_security)
        if self.security.data in smtp.DEFAULT_PORTS and (
                not self.port.data or self.port.data in smtp.DEFAULT_PORTS.values()):
            _set(self.port, smtp.DEFAULT_PORTS[self.security.data])

    def validate_password(self, field):
        if not self.use_incoming.data and not field.data:
            raise ValidationError("Enter the password, or use the incoming account's credentials.")


class SignInSendAsForm(SendAsForm):
    """Send Mail As with "Sign in with ...": no password, no incoming account's credentials."""

    def validate_password(self, field):
        return None


class VerifyForm(HumaneForm):
    code = StringField("Verification code", validators=[DataRequired("Enter the code from the message."),
                                                        Length(max=20)], filters=[_strip])


class MailAddonAdminForm(HumaneForm):
    """Setup > Mail Add-on: the guard's allowed hosts and the organisation's hosted domain."""

    allowed_mail_hosts = StringField("Allowed mail servers", filters=[_strip])
    hosted_domain = StringField("Domain", validators=[Length(max=253)], filters=[_strip])
    hosted_pop_host = StringField("Incoming (POP3) server", validators=[Length(max=253)], filters=[_strip])
    hosted_pop_port = _port_field("POP3 port")
    hosted_pop_security = SelectField("POP3 security", choices=SECURITY_CHOICES)
    hosted_smtp_host = StringField("Outgoing (SMTP) server", validators=[Length(max=253)], filters=[_strip])
    hosted_smtp_port = _port_field("SMTP port")
    hosted_smtp_security = SelectField("SMTP security", choices=SECURITY_CHOICES)
    daily_send_limit_per_user = IntegerField("Daily recipients per user", validators=[
        InputRequired("Enter a number."), NumberRange(1, 100_000, "Between 1 and 100,000.")])
    timezone = StringField("Time zone", validators=[DataRequired("Enter a time zone, like Europe/Berlin."),
                                                    Length(max=64)], filters=[_strip])

    def validate_allowed_mail_hosts(self, field):
        """One entry a line (commas too), each checked and written the way the guard reads it."""
        try:
            field.data = "\n".join(validate_allowed_entry(e) for e in field.data.replace(",", "\n").splitlines()
                                   if e.strip())
        except ValueError as e:
            raise ValidationError(str(e)) from None

    def validate_timezone(self, field):
        try:
            ZoneInfo(field.data)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError("Not a time zone; write it like Europe/Berlin or America/New_York.") from None

    def validate_hosted_domain(self, field):
        if field.data:
            validate_host(self, field)
            if not self.hosted_pop_host.data:
                raise ValidationError("Give the domain's POP3 server too.")

    def validate_hosted_pop_host(self, field):
        if field.data:
            validate_host(self, field)

    def validate_hosted_smtp_host(self, field):
        if field.data:
            validate_host(self, field)


class RelayForm(HumaneForm):
    """Setup > Mail Add-on > Outgoing relay: the server system mail (ownership codes) goes through."""

    host = StringField("Relay server", validators=[DataRequired("Enter the relay's server name."), Length(max=253),
                                                   validate_host], filters=[_strip])
    port = _port_field("Relay port", default=smtp.DEFAULT_PORTS["starttls"])
    security = SelectField("Relay security", choices=SECURITY_CHOICES, default="starttls")
    username = StringField("Relay username", validators=[Length(max=254)], filters=[_strip])
    password = PasswordField("Relay password", validators=[Length(max=256)])
    from_address = EmailField("From address for system mail", filters=[_strip], validators=[
        DataRequired("Enter the From address for system mail."), Length(max=254), email_address()])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="relay", **kwargs)


class ApprovalForm(HumaneForm):
    """An administrator's decision on a Send Mail As address waiting for approval."""

    decision = RadioField("Decision", choices=[SelectChoice("approve", "Approve"), SelectChoice("deny", "Deny")],
                          validators=[InputRequired("Approve or deny.")])


def _endpoint(field, label: str) -> None:
    try:
        field.data = validate_endpoint(field.data, label)
    except ValueError as e:
        raise ValidationError(str(e)) from None


class ClientForm(HumaneForm):
    """Setup > Sign-in providers: this CRM's client ID and secret at Google or Microsoft (never shown back)."""

    client_id = StringField("Client ID", validators=[Length(max=500)], filters=[_strip])
    client_secret = PasswordField("Client secret", validators=[Length(max=500)])


class GenericProviderForm(ClientForm):
    """Setup > Sign-in providers: any OAuth 2.0 provider, by its endpoints (Keycloak, for example)."""

    name = StringField("Name", validators=[DataRequired("Enter the name users see, like Northwind Sign-in."),
                                           Length(max=80)], filters=[_strip])
    authorization_url = StringField("Authorization endpoint", validators=[
        DataRequired("Enter the authorization endpoint's URL."), Length(max=2000)],
                                    filters=[_strip])
    token_url = StringField("Token endpoint", validators=[DataRequired("Enter the token endpoint's URL."),
                                                          Length(max=2000)], filters=[_strip])
    revocation_url = StringField("Revocation endpoint (optional)", validators=[Length(max=2000)], filters=[_strip])
    scopes = StringField("Scopes", validators=[DataRequired("Enter the scopes that allow POP3 (and SMTP)."),
                                               Length(max=2000)], filters=[_strip])
    domains = TextAreaField("Address domains (optional)", validators=[Length(max=2000)], filters=[_strip])
    covers_smtp = BooleanField("Its scopes cover sending (SMTP) too")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="generic", **kwargs)

    def validate_authorization_url(self, field):
        _endpoint(field, "authorization")

    def validate_token_url(self, field):
        _endpoint(field, "token")

    def validate_revocation_url(self, field):
        if field.data:
            _endpoint(field, "revocation")

    def validate_client_id(self, field):
        if not field.data:
            raise ValidationError("Enter the client ID the provider gave this CRM.")

    def validate_client_secret(self, field):
        if not field.data:
            raise ValidationError("Enter the client secret the provider gave this CRM.")
