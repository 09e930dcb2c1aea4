"""The organisation's settings (one row), above all the Mail Add-on switch."""
from __future__ import annotations

from models import OrgSettings, db

ADDON_DISABLED_MESSAGE = (
    "The Mail Add-on is not enabled. An administrator must enable it first in "
    "Setup > Apps & Add-ons > Mail Add-on."
)


def org_settings() -> OrgSettings:
    """The settings row, created with its defaults (add-on disabled) the first time."""
    settings = db.session.get(OrgSettings, 1)
    if settings is None:
        settings = OrgSettings(id=1, mail_addon_enabled=False, timezone="UTC")
        db.session.add(settings)
        db.session.flush()
    return settings


def mail_addon_enabled() -> bool:
    return org_settings().mail_addon_enabled


def set_mail_addon_enabled(enabled: bool) -> None:
    org_settings().mail_addon_enabled = enabled
    db.session.commit()
