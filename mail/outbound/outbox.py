"""Sending from the CRM: who sends, the daily pool, and the sent copy (or an unsent draft).

A message is never lost: it is committed before SMTP sees it, in Sent as "sending" and counted
against the daily pool; then marked sent, or kept as the sender's draft with the reason (refused
by the limits, by a header check or by the SMTP server). A crash in between leaves it in Sent as
"Sending, not confirmed", still counted: it may have gone out. The sent copy is linked to the
records it involves and shared by the sender's own mode like any other of their emails.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid

from sqlalchemy import func, select, text

from mail.inbound import matching, store
from mail.outbound import identities, smtp
from mail.context import MailContext
from mail.errors import MailError, counted
from mail.org import org_zone
from mail.inbound.parsing import parse
from models import DRAFTS, Direction, Email, MailAccount, OrgSettings, SENT, SendAs, SendState, User, db, utcnow

MAX_RECIPIENTS = 50
# PostgreSQL advisory lock that makes "count the pool, then commit the message" one step across
# every web process (SQLite needs none: each transaction takes the write lock at its start).
POOL_LOCK_KEY = 0x6D61696C706F6F6C  # "mailpool"
COUNTED_STATES = (SendState.SENDING, SendState.SENT)


class SendError(Exception):
    """The message was not sent; str() says why in one sentence. `email` is the kept draft, if any."""

    def __init__(self, message: str, email: Email | None = None) -> None:
        super().__init__(message)
        self.email = email


@dataclass
class Outgoing:
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    body: str = ""
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)  # filename, type, content
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)

    @property
    def recipients(self) -> list[str]:
        return self.to + self.cc + self.bcc


def parse_recipients(text: str) -> list[str]:
    """Addresses from a To/Cc/Bcc field ("Ann <ann@x.example>, bob@y.example").

    Raises ValueError with a sentence for a line break or anything that is not an address.
    """
    if "\r" in text or "\n" in text:
        raise ValueError("A recipient field cannot contain a line break.")
    found = []
    for _, address in getaddresses([text]):
        address = address.strip()
        if not address:
            continue
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain or " " in address:
            raise ValueError(f"“{address}” is not an email address.")
        found.append(address)
    return found


def crm_mailbox(user: User) -> MailAccount | None:
    account_id = matching.crm_mailbox_id(user.id)
    return db.session.get(MailAccount, account_id) if account_id else None


def sending_identity(user: User) -> tuple[SendAs | None, str]:
    """The verified Send Mail As identity for the user's CRM mailbox address, or why there is none."""
    mailbox = crm_mailbox(user)
    if mailbox is None:
        return None, "You have no CRM mailbox yet: add a POP3 account first."
    identity = db.session.scalar(select(SendAs).where(SendAs.user_id == user.id,
                                                      SendAs.from_address == mailbox.email))
    if identity is None:
        return None, f"Add {mailbox.email} in Send Mail As to send from the CRM."
    if not identity.verified:
        return None, f"Verify {mailbox.email} in Send Mail As to send from the CRM."
    return identity, ""


def today_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Midnight to midnight today, in the organisation's time zone."""
    zone = org_zone()
    local = (now or utcnow()).astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    return start, start + timedelta(days=1)


def daily_pool() -> int:
    org = db.session.get(OrgSettings, 1)
    per_user = org.daily_send_limit_per_user if org else 300
    active = db.session.scalar(select(func.count()).select_from(User).where(User.active.is_(True))) or 0
    return per_user * active


def remaining_today(now: datetime | None = None) -> int:
    """Recipients the organisation may still send to today (each To, Cc and Bcc counts)."""
    start, end = today_window(now)
    used = db.session.scalar(select(func.coalesce(func.sum(Email.recipient_count), 0)).where(
        Email.direction == Direction.SENT, Email.send_state.in_(COUNTED_STATES),
        Email.received_at >= start, Email.received_at < end)) or 0
    return max(0, daily_pool() - used)


def _message(identity: SendAs, out: Outgoing) -> EmailMessage:
    for value in (out.subject, *out.recipients, out.in_reply_to, *out.references):
        if "\r" in value or "\n" in value:
            raise SendError("A header field contains a line break, so the message was not sent.")
    message = EmailMessage()
    message["From"] = formataddr((identity.from_name, identity.from_address))
    message["To"] = ", ".join(out.to)
    if out.cc:
        message["Cc"] = ", ".join(out.cc)
    message["Subject"] = out.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=identity.from_address.rpartition("@")[2] or None)
    if out.in_reply_to:
        message["In-Reply-To"] = out.in_reply_to
        message["References"] = " ".join([*out.references, out.in_reply_to][-20:])
    message.set_content(out.body)
    for filename, content_type, content in out.attachments:
        maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return message


def _keep(user: User, raw: bytes, out: Outgoing, state: SendState, error: str = "") -> Email:
    """Store and commit the message as the sender's: in Sent (linked to its records) or as a draft."""
    parsed = parse(raw, utcnow())
    email = store.store(user.id, None, raw, parsed, crm_mailbox_id=None, settings=None)
    email.direction = Direction.SENT
    email.bcc_text = ", ".join(out.bcc)
    email.is_read = True
    _set_state(email, state, len(out.recipients), error)
    matching.link_email(email, parsed.participants())
    db.session.commit()
    return email


def _set_state(email: Email, state: SendState, recipients: int, error: str = "") -> None:
    email.send_state, email.send_error = state, error
    email.folder = DRAFTS if state is SendState.DRAFT else SENT
    email.recipient_count = 0 if state is SendState.DRAFT else recipients  # a draft frees its place


def _lock_pool() -> None:
    """Hold the organisation's pool until this transaction ends (PostgreSQL; see POOL_LOCK_KEY)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POOL_LOCK_KEY})


def _reserve(user: User, raw: bytes, out: Outgoing) -> Email:
    """Commit the message as sending, counted against today's pool, if the pool has room.

    Raises SendError with the kept draft when it has not.
    """
    _lock_pool()
    left = remaining_today()
    if len(out.recipients) > left:
        reason = (f"The organisation's sending limit for today has {counted(left, 'recipient')} left and this message "
                  f"has {len(out.recipients)}, so it was not sent; send it tomorrow or to fewer people.")
        raise SendError(reason, _keep(user, raw, out, SendState.DRAFT, reason))
    return _keep(user, raw, out, SendState.SENDING)


def send(ctx: MailContext, user: User, out: Outgoing) -> Email:
    """Send from the user's CRM mailbox address; return the sent copy.

    The message is committed (sending, counted) before SMTP and no transaction is open during
    it. Raises SendError (with the kept draft when there is a message to keep) when nothing was sent.
    """
    identity, why = sending_identity(user)
    if identity is None:
        raise SendError(why)
    if not out.recipients:
        raise SendError("Add at least one recipient.")
    message = _message(identity, out)
    raw = bytes(message)
    if len(out.recipients) > MAX_RECIPIENTS:
        reason = f"A message can go to at most {MAX_RECIPIENTS} recipients; this one has {len(out.recipients)}."
        raise SendError(reason, _keep(user, raw, out, SendState.DRAFT, reason))
    try:
        settings = identities.connection_settings(ctx, identity)  # may refresh a sign-in's token
    except MailError as e:
        raise SendError(f"The message was not sent: {e}") from None
    policy = ctx.policy()
    email = _reserve(user, raw, out)  # commits: nothing of the database is held from here to the answer
    try:
        smtp.send(settings, policy, message, out.recipients)
    except MailError as e:
        reason = f"The message was not sent: {e}"
        _set_state(email, SendState.DRAFT, 0, reason)
        db.session.commit()
        raise SendError(reason, email) from None
    _set_state(email, SendState.SENT, len(out.recipients))
    db.session.commit()
    return email
