"""The database: typed SQLAlchemy 2.0 models. The schema itself comes only from migrations/."""
from __future__ import annotations

import enum
import sqlite3
from datetime import datetime, timezone
from typing import Optional

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, DateTime, Enum, ForeignKey, Integer, MetaData, String, Text, TypeDecorator, UniqueConstraint, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

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
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    # SQLite leaves foreign keys unenforced unless asked; WAL lets the poller thread write
    # while pages read; busy_timeout makes a writer wait for the lock instead of failing.
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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

    def __repr__(self) -> str:
        return f"<User {self.email}>"


class SignInFailure(db.Model):
    """Failed sign-ins per address (known or not), to slow down password guessing."""

    __tablename__ = "sign_in_failures"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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


class RecordKind(str, enum.Enum):
    LEAD = "lead"
    CONTACT = "contact"


class Record(db.Model):
    """A Lead or a Contact: the CRM records mail is filed under.

    One table for both (single-table inheritance), so that mail links and Share Email
    choices point at one kind of row whichever the record is.
    """

    __tablename__ = "records"

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

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])

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
    AUTH_ERROR = "auth_error"  # the server refused the password: nothing is fetched until it changes
    ERROR = "error"  # anything else (server down, timeout): retried by itself


def _enum(cls):
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class MailAccount(db.Model):
    """A user's POP3 account. The password is stored encrypted (mail.secrets), never in clear."""

    __tablename__ = "mail_accounts"
    __table_args__ = (UniqueConstraint("user_id", "host", "username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[Security] = mapped_column(_enum(Security))
    username: Mapped[str] = mapped_column(String(254))
    password_encrypted: Mapped[str] = mapped_column(Text)
    leave_on_server: Mapped[bool] = mapped_column(Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[AccountState] = mapped_column(_enum(AccountState), default=AccountState.READY)
    uidl_supported: Mapped[bool] = mapped_column(Boolean, default=True)
    last_checked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()


class SendAs(db.Model):
    """An outgoing ("Send Mail As") SMTP identity; usable once its address is verified."""

    __tablename__ = "send_as"
    __table_args__ = (UniqueConstraint("user_id", "from_address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    from_name: Mapped[str] = mapped_column(String(120))
    from_address: Mapped[str] = mapped_column(String(254))
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[Security] = mapped_column(_enum(Security))
    username: Mapped[str] = mapped_column(String(254))
    password_encrypted: Mapped[str] = mapped_column(Text)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # The ownership code mailed to from_address: only its hash is kept, for a limited time.
    code_hash: Mapped[str] = mapped_column(String(256), default="")
    code_sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, default=None)
    code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
