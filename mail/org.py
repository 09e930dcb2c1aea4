"""The organisation's settings (one row): the Mail Add-on switch and the time zone, among others."""
from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from models import OrgSettings, db

DEFAULT_ZONE = "UTC"
# What Setup > Mail Add-on's organisation settings form may change (the relay has its own form).
MAIL_SETTINGS_FIELDS = ("allowed_mail_hosts", "hosted_domain", "hosted_pop_host", "hosted_pop_port",
                        "hosted_pop_security", "hosted_smtp_host", "hosted_smtp_port", "hosted_smtp_security",
                        "daily_send_limit_per_user", "timezone")

ADDON_DISABLED_MESSAGE = (
    "The Mail Add-on is not enabled. An administrator must enable it first in "
    "Setup > Apps & Add-ons > Mail Add-on."
)


def _defaults() -> OrgSettings:
    return OrgSettings(id=1, mail_addon_enabled=False, timezone=DEFAULT_ZONE, allowed_mail_hosts="", hosted_domain="",
                       hosted_pop_host="", hosted_pop_port=995, hosted_pop_security="ssl", hosted_smtp_host="",
                       hosted_smtp_port=587, hosted_smtp_security="starttls", daily_send_limit_per_user=300)


def org_settings() -> OrgSettings:
    """The settings row, for reading: the migrations seed it, and a read never writes (a database
    emptied by hand reads the defaults, unsaved)."""
    return db.session.get(OrgSettings, 1) or _defaults()


def org_settings_for_update() -> OrgSettings:
    """The settings row, to change and commit: added with its defaults where it is missing."""
    settings = db.session.get(OrgSettings, 1)
    if settings is None:
        settings = _defaults()
        db.session.add(settings)
    return settings


def mail_addon_enabled() -> bool:
    """Whether an administrator enabled the Mail Add-on (off until then); reads, never writes."""
    return bool(db.session.scalar(select(OrgSettings.mail_addon_enabled).where(OrgSettings.id == 1)))


def org_zone() -> ZoneInfo:
    """The organisation's time zone, for every time shown and for the daily sending window."""
    name = db.session.scalar(select(OrgSettings.timezone).where(OrgSettings.id == 1)) or DEFAULT_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def set_mail_addon_enabled(enabled: bool) -> None:
    org_settings_for_update().mail_addon_enabled = enabled
    db.session.commit()


def save_mail_settings(values: dict) -> None:
    """Keep the organisation's mail settings (checked by the form); the hosted domain lowercased."""
    settings = org_settings_for_update()
    for name in MAIL_SETTINGS_FIELDS:
        setattr(settings, name, values[name])
    settings.hosted_domain = settings.hosted_domain.lower()
    db.session.commit()
