"""The database: typed SQLAlchemy 2.0 models. The schema itself comes only from migrations/."""
from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Optional

import idna
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (Boolean, DateTime, Enum, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Text,
                        TypeDecorator, UniqueConstraint, event, func, inspect, text)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from fulltext import index_text

# Named constraints, so migrations can alter them on SQLite (batch mode) and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _connection_settings(dbapi_connection, connection_record) -> None:
    # SQLite leaves foreign keys unenforced unless asked; WAL lets pages read while the poller
    # thread writes; busy_timeout makes a writer wait for the lock instead of failing.
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
        dbapi_connection.isolation_level = None  # we say BEGIN ourselves (below)
    elif type(dbapi_connection).__module__.startswith("psycopg"):
        # Our pages run short queries whose correlated subqueries (the sharing rule) make the
        # planner's cost estimates huge: PostgreSQL then JIT-compiles them, 300+ ms a page for a
        # query that runs in under 1 ms. And psycopg prepares a statement run often; PostgreSQL's
        # generic plan for it ignores whose mail is asked for (one user's 10,000 or another's 10)
        # and was three times slower (bench/RESULTS.md, conversations): plan each with its values.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
            cursor.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()


# True while this thread serves a request that only reads (GET, HEAD; set by app.py): its SQLite
# transactions begin deferred and take no write lock. Everything else (other requests, the poller,
# the CLI) begins with BEGIN IMMEDIATE.
_reads_only: ContextVar[bool] = ContextVar("reads_only", default=False)
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def reads_only(flag: bool) -> None:
    """Say whether the transactions that follow in this thread only read (app.py, per request)."""
    _reads_only.set(flag)


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection) -> None:
    # A deferred transaction that reads, then writes after another connection committed, fails
    # at once with "database is locked" (busy_timeout cannot help it). So a transaction that may
    # write takes the write lock at BEGIN and queues; one that only reads begins deferred and
    # reads its WAL snapshot while others write (a read never waits for the lock).
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN" if _reads_only.get() else "BEGIN IMMEDIATE")


@event.listens_for(Engine, "before_cursor_execute")
def _no_write_in_a_read(connection, cursor, statement, parameters, context, executemany) -> None:
    # A write in a deferred transaction is the failure above waiting for a busy moment: refuse it
    # every time instead, so that the tests find it (wrap the write in `writing()`).
    if (_reads_only.get() and connection.dialect.name == "sqlite"
            and statement.lstrip()[:7].upper().startswith(_WRITE_VERBS)):
        raise RuntimeError("A request that only reads wrote outside models.writing(): " + statement[:60])


@contextmanager
def writing() -> Iterator[None]:
    """Write from a request that otherwise only reads (a GET that marks mail read): the read
    transaction ends here (commit: it holds nothing to write), the writes run in a transaction of
    their own that takes the write lock at BEGIN (SQLite: waits its turn, never "database is
    locked"), committed at the end or rolled back on an error."""
    db.session.commit()
    token = _reads_only.set(False)
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _reads_only.reset(token)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


MESSAGE_ID_CHARS = 998  # Message-ID, In-Reply-To and the ledger's message_id columns
# The folders every mailbox has (Email.folder); consolidation adds folders and labels of its own.
INBOX, SENT, DRAFTS = "Inbox", "Sent", "Drafts"


def normalise_address(text: str | None) -> str:
    """An email address as the CRM compares it (records, users, participants): trimmed, lowercased."""
    return (text or "").strip().lower()


def normalise_domain(text: str | None) -> str:
    """A domain as the CRM compares it (Exclude Domains, the participants of an email): trimmed,
    lowercase, without a trailing dot, in its IDNA ASCII form, so that the Unicode and the
    punycode spelling of a domain are one domain. A name IDNA refuses stays as written, lowercase."""
    domain = (text or "").strip().rstrip(".").lower()
    if domain.isascii():  # already the ASCII form (punycode labels included)
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return domain


def domain_for_people(domain: str) -> str:
    """A normalised domain as people write it: punycode labels shown in Unicode."""
    try:
        return idna.decode(domain) if "xn--" in domain else domain
    except (idna.IDNAError, UnicodeError):
        return domain


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite drops the offset; without this, comparing its values with `utcnow()` raises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        if value is not None and dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Optional[datetime], dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Role(str, enum.Enum):
    ADMIN = "admin"
    STANDARD = "standard"

    @property
    def label(self) -> str:
        return "Administrator" if self is Role.ADMIN else "Standard"


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=Role.STANDARD,
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    # The token of the session this request signed in with (crm.users.start_session sets it):
    # Flask-Login keeps get_id() in the session and remember cookies, so ending the session row
    # ends both cookies.
    session_token = None  # str; not a column

    def get_id(self) -> str:
        if not self.session_token:
            raise RuntimeError("Sign-in without a session: use crm.users.start_session first.")
        return self.session_token

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class SignInThrottle(db.Model):
    """Sign-in attempts per (address, client) and per client across addresses ("" address),
    to slow password guessing without letting a stranger lock anyone out.

    Times are seconds since the epoch (floats): the one atomic upsert that reserves an attempt
    compares and sets them with plain arithmetic the same way on SQLite and PostgreSQL.
    """

    __tablename__ = "sign_in_throttles"

    address: Mapped[str] = mapped_column(String(254), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_s: Mapped[float] = mapped_column(Float, index=True)
    next_try_s: Mapped[float] = mapped_column(Float)


class UserSession(db.Model):
    """One signed-in browser: its cookies name it, so it can be ended server-side."""

    __tablename__ = "user_sessions"

    # The SHA-256 of the token in the cookie: a copy of the database signs no one in.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrgSettings(db.Model):
    """The organisation's own settings: a single row (id 1)."""

    __tablename__ = "org_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    mail_addon_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Outbound guard: hosts, addresses or networks (one per line) mail servers may be on besides
    # public addresses on mail ports (self-hosted mail on a private network).
    allowed_mail_hosts: Mapped[str] = mapped_column(Text, default="")
    # The organisation's own mail domain: its users are offered their mailbox directly.
    hosted_domain: Mapped[str] = mapped_column(String(253), default="")
    hosted_pop_host: Mapped[str] = mapped_column(String(253), default="")
    hosted_pop_port: Mapped[int] = mapped_column(Integer, default=995)
    hosted_pop_security: Mapped[str] = mapped_column(String(16), default="ssl")
    hosted_smtp_host: Mapped[str] = mapped_column(String(253), default="")
    hosted_smtp_port: Mapped[int] = mapped_column(Integer, default=587)
    hosted_smtp_security: Mapped[str] = mapped_column(String(16), default="starttls")
    # Sending limits: each recipient counts against a daily pool of this many per active user.
    daily_send_limit_per_user: Mapped[int] = mapped_column(Integer, default=300)
    # The outgoing relay for system mail (Send Mail As codes): set by an administrator only, so a
    # code reaches whoever reads the address, not whoever typed in an SMTP server. No host: no relay.
    relay_host: Mapped[str] = mapped_column(String(253), default="")
    relay_port: Mapped[int] = mapped_column(Integer, default=587)
    relay_security: Mapped[str] = mapped_column(String(16), default="starttls")
    relay_username: Mapped[str] = mapped_column(String(254), default="")
    relay_password_encrypted: Mapped[str] = mapped_column(Text, default="")  # mail.secrets, never shown
    relay_from_address: Mapped[str] = mapped_column(String(254), default="")


class RecordKind(str, enum.Enum):
    LEAD = "lead"
    CONTACT = "contact"


class Record(db.Model):
    """A Lead or a Contact: the CRM records mail is filed under.

    One table for both (single-table inheritance), so that mail links and Share Email
    choices point at one kind of row whichever the record is.
    """

    __tablename__ = "records"
    # The Leads and Contacts lists in their default order (crm.records.SORTS["name"]), read a page
    # at a time from the index instead of sorting every record of the kind.
    __table_args__ = (Index("ix_records_kind_name", "kind", func.lower(text("last_name")),
                            func.lower(text("first_name")), "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[RecordKind] = mapped_column(
        Enum(RecordKind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        index=True,
    )
    first_name: Mapped[str] = mapped_column(String(80), default="")
    last_name: Mapped[str] = mapped_column(String(80))
    company: Mapped[str] = mapped_column(String(120), default="")
    # Stored normalised (trimmed, lowercased) and indexed: every incoming mail is looked up by it.
    email: Mapped[str] = mapped_column(String(254), default="", index=True)
    phone: Mapped[str] = mapped_column(String(40), default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Leads only: the Contact this lead was converted into.
    converted_contact_id: Mapped[Optional[int]] = mapped_column(ForeignKey("records.id", ondelete="SET NULL"), default=None)
    converted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    # The words of SEARCHED (fulltext.index_text), kept by _search_text_default and _keep_search_text;
    # indexed by records_fts (SQLite FTS5) or ix_records_search (PostgreSQL GIN), see the migration hfts1.
    search_text: Mapped[str] = mapped_column(Text, server_default="", deferred=True,
                                             default=lambda context: _search_text_default(Record, context))

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    SEARCHED = ("first_name", "last_name", "company", "email")

    __mapper_args__ = {"polymorphic_on": "kind"}

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def __repr__(self) -> str:
        return f"<{self.kind.value} {self.id} {self.full_name}>"


class Lead(Record):
    __mapper_args__ = {"polymorphic_identity": RecordKind.LEAD}


class Contact(Record):
    __mapper_args__ = {"polymorphic_identity": RecordKind.CONTACT}


class Security(str, enum.Enum):
    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"

    @property
    def label(self) -> str:
        return {"ssl": "SSL/TLS", "starttls": "STARTTLS", "none": "None"}[self.value]


class AccountState(str, enum.Enum):
    READY = "ready"  # signed in at its last check
    # The server refused the password, or the sign-in provider the saved grant ("Sign in again"):
    # nothing is fetched until the password changes or the user signs in again.
    AUTH_ERROR = "auth_error"
    ERROR = "error"  # anything else (server down, timeout): retried by itself


def _enum(cls):
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class ServerColumns:
    """How to reach and sign in to a mail server: the same five columns for POP3 and SMTP."""

    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[Security] = mapped_column(_enum(Security))
    username: Mapped[str] = mapped_column(String(254))
    password_encrypted: Mapped[str] = mapped_column(Text)


class SignInProvider(db.Model):
    """An OAuth 2.0 provider this organisation signs mailboxes in with: Google or Microsoft (built
    in: their endpoints come from mail/oauth_providers.toml, key "google" / "microsoft") or one an
    administrator added by its endpoints. Client ID and secret are encrypted (mail.secrets), never shown."""

    __tablename__ = "sign_in_providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)  # "google", "microsoft", "custom-<n>"
    name: Mapped[str] = mapped_column(String(80))
    authorization_url: Mapped[str] = mapped_column(Text, default="")  # generic providers only
    token_url: Mapped[str] = mapped_column(Text, default="")
    revocation_url: Mapped[str] = mapped_column(Text, default="")
    scopes: Mapped[str] = mapped_column(Text, default="")
    # Address domains offered this sign-in (one a line); a generic provider is offered to any address.
    domains: Mapped[str] = mapped_column(Text, default="")
    covers_smtp: Mapped[bool] = mapped_column(Boolean, default=False)
    client_id_encrypted: Mapped[str] = mapped_column(Text, default="")
    client_secret_encrypted: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailAccount(ServerColumns, db.Model):
    """A user's POP3 account. The password is stored encrypted (mail.secrets), never in clear."""

    __tablename__ = "mail_accounts"
    __table_args__ = (UniqueConstraint("user_id", "host", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254))
    leave_on_server: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[AccountState] = mapped_column(_enum(AccountState), default=AccountState.READY)
    uidl_supported: Mapped[bool] = mapped_column(Boolean, default=True)
    last_checked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Polling: when, how often, and who holds the lease (a worker that dies loses it at lease_until).
    poll_interval_s: Mapped[int] = mapped_column(Integer, default=300)
    next_poll_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None, index=True)
    backoff_s: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str] = mapped_column(String(120), default="")
    lease_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    poll_requested: Mapped[bool] = mapped_column(Boolean, default=False)  # Fetch now
    last_poll_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    last_poll_fetched: Mapped[int] = mapped_column(Integer, default=0)
    last_poll_linked: Mapped[int] = mapped_column(Integer, default=0)
    last_poll_skipped: Mapped[int] = mapped_column(Integer, default=0)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)  # live progress of a running poll
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    # Signed in with OAuth 2.0 (SASL XOAUTH2) instead of a password: the provider and its tokens,
    # encrypted like passwords (mail.secrets); the access token is refreshed before token_expires_at.
    sign_in_provider_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("sign_in_providers.id", ondelete="SET NULL"), default=None)
    access_token_encrypted: Mapped[str] = mapped_column(Text, default="")
    refresh_token_encrypted: Mapped[str] = mapped_column(Text, default="")
    token_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship()
    sign_in_provider: Mapped[Optional[SignInProvider]] = relationship()

    @property
    def signs_in(self) -> bool:
        """True for an account signed in with OAuth 2.0 ("Sign in again" rather than a password)."""
        return bool(self.refresh_token_encrypted or self.access_token_encrypted)


class Approval(str, enum.Enum):
    """An administrator's say on a Send Mail As address, asked only when there is no relay for codes."""

    NONE = "none"  # not asked: the address is proven by a code mailed through the relay
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class SendAs(ServerColumns, db.Model):
    """An outgoing ("Send Mail As") SMTP identity; usable once its address is verified."""

    __tablename__ = "send_as"
    __table_args__ = (UniqueConstraint("user_id", "from_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    from_name: Mapped[str] = mapped_column(String(120))
    from_address: Mapped[str] = mapped_column(String(254))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # The ownership code mailed to from_address: only its hash is kept, for a limited time.
    code_hash: Mapped[str] = mapped_column(String(256), default="")
    code_sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Without a relay an administrator vouches for the address instead (Setup > Mail Add-on).
    approval: Mapped[Approval] = mapped_column(_enum(Approval), default=Approval.NONE, index=True)
    approved_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    approval_decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Signed in with OAuth 2.0 (SASL XOAUTH2) instead of a password: the provider and its tokens,
    # encrypted like passwords (mail.secrets); the access token is refreshed before token_expires_at.
    sign_in_provider_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("sign_in_providers.id", ondelete="SET NULL"), default=None)
    access_token_encrypted: Mapped[str] = mapped_column(Text, default="")
    refresh_token_encrypted: Mapped[str] = mapped_column(Text, default="")
    token_expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    # Outside a poll there is no account lease: a refresh takes this short one (two workers
    # refreshing one rotating token at once would spend it twice and lose the sign-in).
    refresh_lease_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    sign_in_provider: Mapped[Optional[SignInProvider]] = relationship()

    @property
    def signs_in(self) -> bool:
        return bool(self.refresh_token_encrypted or self.access_token_encrypted)


class SharingMode(str, enum.Enum):
    PRIVATE = "private"  # only me (the default: nothing is shared until its owner says so)
    CUSTOM = "custom"  # the records I tick Share Email on
    PUBLIC = "public"  # everything, except mail involving an Exclude Domain

    @property
    def label(self) -> str:
        return {"private": "Private - Only me", "custom": "Custom - Record-level Sharing",
                "public": "Public - Complete Sharing"}[self.value]


class ConsolidateAs(str, enum.Enum):
    FOLDER = "folder"  # customer mail moves out of the Inbox into one folder
    LABEL = "label"  # customer mail stays in the Inbox and carries one label


class AddonSettings(db.Model):
    """Each user's Mail Add-on settings; a user without a row is Private."""

    __tablename__ = "addon_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # The mailbox that feeds the CRM (matched to records, used to send); None: the default account.
    mailbox_account_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("mail_accounts.id", ondelete="SET NULL"), default=None)
    sharing_mode: Mapped[SharingMode] = mapped_column(_enum(SharingMode), default=SharingMode.PRIVATE)
    consolidate: Mapped[bool] = mapped_column(Boolean, default=False)
    consolidate_as: Mapped[ConsolidateAs] = mapped_column(_enum(ConsolidateAs), default=ConsolidateAs.FOLDER)
    consolidate_name: Mapped[str] = mapped_column(String(80), default="Customers")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ExcludedDomain(db.Model):
    """Public mode's Exclude Domains (at most 5 a user): mail from (or sent to) them stays private.

    A row per domain, as normalise_domain writes it, so that the sharing rule can be one SQL filter; a domain
    also covers its subdomains.
    """

    __tablename__ = "excluded_domains"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)


class RecordAddress(db.Model):
    """Every address of a Lead or Contact (primary and secondary), indexed: mail is matched here."""

    __tablename__ = "record_addresses"
    __table_args__ = (UniqueConstraint("record_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(254), index=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)


class Direction(str, enum.Enum):
    RECEIVED = "received"
    SENT = "sent"


class SendState(str, enum.Enum):
    SENT = "sent"
    # Committed and counted against the daily pool, handed to SMTP, no answer recorded yet; one
    # left so by a crash stays in Sent as "Sending, not confirmed" (it may have gone out).
    SENDING = "sending"
    DRAFT = "draft"  # not sent: refused before sending (limit) or the SMTP server failed
    NONE = "none"  # received mail


class RawMessage(db.Model):
    """A message's bytes exactly as they came (or went), kept apart from the email row."""

    __tablename__ = "raw_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Conversation(db.Model):
    """Messages that belong together (mail.inbound.threads decides): a reply joins its original.

    Holds no counts or snippets: what a viewer sees of a conversation depends on which of its
    messages the sharing rule lets them see, so lists compute that from the emails.
    """

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    # For mail that names no other message: its normalised subject and participants, hashed.
    fallback_key: Mapped[Optional[str]] = mapped_column(String(64), default=None, index=True)
    last_date: Mapped[datetime] = mapped_column(UTCDateTime)


class ConversationKey(db.Model):
    """A Message-ID that a conversation's messages carry or name (In-Reply-To, References)."""

    __tablename__ = "conversation_keys"

    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_CHARS), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)


class Email(db.Model):
    """One message as stored, owned by one user: the one whose mailbox fetched it or who sent it."""

    __tablename__ = "emails"
    __table_args__ = (Index("ix_emails_owner_folder_date", "owner_id", "folder", "date"),
                      Index("ix_emails_conversation_date", "conversation_id", "date", "id"),
                      # The Email tab's folder and unread counts, read from the index alone.
                      Index("ix_emails_owner_folder_state_read", "owner_id", "folder", "send_state", "is_read"),
                      # Its labels, and a label's list newest first.
                      Index("ix_emails_owner_label_date", "owner_id", "label", "date"))

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[Optional[int]] = mapped_column(ForeignKey("mail_accounts.id", ondelete="SET NULL"),
                                                      default=None, index=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction), default=Direction.RECEIVED)
    send_state: Mapped[SendState] = mapped_column(_enum(SendState), default=SendState.NONE)
    send_error: Mapped[str] = mapped_column(Text, default="")
    folder: Mapped[str] = mapped_column(String(80), default=INBOX)
    label: Mapped[str] = mapped_column(String(80), default="")
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_CHARS), index=True)
    in_reply_to: Mapped[str] = mapped_column(String(MESSAGE_ID_CHARS), default="")
    references: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    from_name: Mapped[str] = mapped_column(String(254), default="")
    from_address: Mapped[str] = mapped_column(String(254), default="", index=True)
    to_text: Mapped[str] = mapped_column(Text, default="")
    cc_text: Mapped[str] = mapped_column(Text, default="")
    bcc_text: Mapped[str] = mapped_column(Text, default="")
    reply_to_text: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    snippet: Mapped[str] = mapped_column(String(300), default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[Optional[str]] = mapped_column(Text, default=None)  # as received; sanitised when shown
    size: Mapped[int] = mapped_column(Integer, default=0)
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    recipient_count: Mapped[int] = mapped_column(Integer, default=0)  # sent mail: counts against the daily pool
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    parse_notes: Mapped[str] = mapped_column(Text, default="")
    raw_id: Mapped[Optional[int]] = mapped_column(ForeignKey("raw_messages.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # conversations.id, set when the email is stored (mail.inbound.threads). No foreign key: on
    # SQLite adding one means rebuilding this table, whose drop would cascade to every child row;
    # conversations are never deleted (a merge only repoints the emails).
    conversation_id: Mapped[Optional[int]] = mapped_column(Integer, default=None)
    # The words of SEARCHED (fulltext.index_text), kept by _search_text_default and _keep_search_text;
    # indexed by emails_fts (SQLite FTS5) or ix_emails_search (PostgreSQL GIN), see the migration hfts1.
    search_text: Mapped[str] = mapped_column(Text, server_default="", deferred=True,
                                             default=lambda context: _search_text_default(Email, context))

    owner: Mapped[User] = relationship()
    raw: Mapped[Optional[RawMessage]] = relationship()
    SEARCHED = ("subject", "from_name", "from_address", "to_text", "cc_text", "text_body")


class EmailParticipant(db.Model):
    """Who an email involves (From, To, Cc), by address and domain: for matching and Exclude Domains."""

    __tablename__ = "email_participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(8))  # from, to, cc
    address: Mapped[str] = mapped_column(String(254), index=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)


class Attachment(db.Model):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    content_id: Mapped[str] = mapped_column(String(255), default="")
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class EmailLink(db.Model):
    """An email involves this Lead or Contact.

    The email's date is copied here so that a record's related list is read newest first straight
    from one index, stopping after a page, however many emails the record has.
    """

    __tablename__ = "email_links"
    __table_args__ = (Index("ix_email_links_record_date", "record_id", "email_date", "email_id"),
                      Index("ix_email_links_record_owner_date", "record_id", "owner_id", "email_date", "email_id"))

    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)
    email_date: Mapped[datetime] = mapped_column(UTCDateTime)
    # The email's owner, copied like its date (an email never changes owner): the related list
    # picks a record's links owner by owner and asks the sharing rule once per owner, so that
    # the links the viewer may not see cost nothing. No foreign key: the email's cascades it.
    owner_id: Mapped[int] = mapped_column(Integer)


class RecordShare(db.Model):
    """The Share Email checkbox: this owner shares their email linked to this record (Custom mode)."""

    __tablename__ = "record_shares"

    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SharingChange(db.Model):
    """A change that widened or narrowed someone's sharing: whose, when, before, after, by whom."""

    __tablename__ = "sharing_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    what: Mapped[str] = mapped_column(String(80))
    before: Mapped[str] = mapped_column(Text, default="")
    after: Mapped[str] = mapped_column(Text, default="")
    effect: Mapped[str] = mapped_column(Text, default="")
    # A change someone else made (a colleague's record edit that newly linked this user's shared
    # mail): who, on which record; `notice` stays True until the user dismisses it.
    by_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    record_id: Mapped[Optional[int]] = mapped_column(ForeignKey("records.id", ondelete="SET NULL"), default=None)
    notice: Mapped[bool] = mapped_column(Boolean, default=False)

    record: Mapped[Optional[Record]] = relationship()


class FetchState(str, enum.Enum):
    FETCHED = "fetched"  # stored here (committed)
    SKIPPED = "skipped"  # not downloaded, with a reason (too large: left on the server)
    DELETED = "deleted"  # stored here, then deleted from the server (delete mode)


class FetchedMessage(db.Model):
    """The fetch ledger: what this CRM knows of each message on an account's server."""

    __tablename__ = "fetched_messages"
    # Not unique: a server may list one UIDL for two messages (a sender can write X-UIDL), mail.inbound.ledger.
    __table_args__ = (Index("ix_fetched_account_uidl", "account_id", "uidl"),
                      Index("ix_fetched_account_msgid", "account_id", "message_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("mail_accounts.id", ondelete="CASCADE"), index=True)
    uidl: Mapped[Optional[str]] = mapped_column(String(255), default=None)  # None: server without UIDL
    size: Mapped[int] = mapped_column(Integer, default=0)
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_CHARS), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[FetchState] = mapped_column(_enum(FetchState), default=FetchState.FETCHED)
    reason: Mapped[str] = mapped_column(String(255), default="")
    email_id: Mapped[Optional[int]] = mapped_column(ForeignKey("emails.id", ondelete="SET NULL"), default=None)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _search_text_default(model, context) -> str:
    # Every insert, ORM or bulk (queries.insert_many, executemany), computes the row's words here.
    row = context.get_current_parameters()
    return index_text(*(row.get(name) for name in model.SEARCHED))


@event.listens_for(Session, "before_flush")
def _keep_search_text(session, flush_context, instances) -> None:
    # An ORM edit of a searched field (a draft saved again, a record renamed) writes the words
    # again. Core UPDATEs of these fields would bypass this: there are none (folder and label only).
    for obj in session.dirty:
        if isinstance(obj, (Email, Record)):
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in obj.SEARCHED):
                obj.search_text = index_text(*(getattr(obj, name) for name in obj.SEARCHED))
