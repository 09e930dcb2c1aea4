"""Well-known mail providers: fill in the server settings from the address's domain.

Settings are the providers' published ones for third-party clients. A provider marked
blocked cannot be added with a password at all; the form shows its note instead.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str
    pop_host: str
    pop_port: int
    pop_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    note: str = ""
    blocked: bool = False


MICROSOFT_NOTE = ("Microsoft no longer accepts passwords over POP3 for Outlook.com and "
                  "Microsoft 365 mailboxes, so this account cannot be added with a password.")
APP_PASSWORD_NOTE = ("{name} accepts only an app password here, not your normal password; "
                     "create one in your {name} account security settings.")

GMAIL = Provider(
    "Gmail", "pop.gmail.com", 995, "ssl", "smtp.gmail.com", 465, "ssl",
    note=("Turn on POP in Gmail's settings and use an app password. If you use any POP client "
          "other than this CRM, enter the username as recent:username@gmail.com and select "
          "Leave messages in the server."),
)
YAHOO = Provider("Yahoo Mail", "pop.mail.yahoo.com", 995, "ssl", "smtp.mail.yahoo.com", 465, "ssl",
                 note=APP_PASSWORD_NOTE.format(name="Yahoo"))
GMX_COM = Provider("GMX", "pop.gmx.com", 995, "ssl", "mail.gmx.com", 465, "ssl",
                   note="Turn on POP3 access in the GMX settings first.")
GMX_NET = Provider("GMX", "pop.gmx.net", 995, "ssl", "mail.gmx.net", 465, "ssl",
                   note="Turn on POP3 access in the GMX settings first.")
ZOHO = Provider("Zoho Mail", "pop.zoho.com", 995, "ssl", "smtp.zoho.com", 465, "ssl",
                note="Turn on POP access in the Zoho Mail settings first.")
FASTMAIL = Provider("Fastmail", "pop.fastmail.com", 995, "ssl", "smtp.fastmail.com", 465, "ssl",
                    note=APP_PASSWORD_NOTE.format(name="Fastmail"))
ICLOUD = Provider(
    "iCloud Mail", "", 0, "ssl", "smtp.mail.me.com", 587, "starttls",
    note="iCloud Mail does not offer POP3, so this account cannot be added.", blocked=True,
)
AOL = Provider("AOL Mail", "pop.aol.com", 995, "ssl", "smtp.aol.com", 465, "ssl",
               note=APP_PASSWORD_NOTE.format(name="AOL"))
YANDEX_RU = Provider("Yandex Mail", "pop.yandex.ru", 995, "ssl", "smtp.yandex.ru", 465, "ssl",
                     note="Allow mail clients in the Yandex Mail settings and use an app password.")
YANDEX_COM = Provider("Yandex Mail", "pop.yandex.com", 995, "ssl", "smtp.yandex.com", 465, "ssl",
                      note="Allow mail clients in the Yandex Mail settings and use an app password.")
MAIL_RU = Provider("Mail.ru", "pop.mail.ru", 995, "ssl", "smtp.mail.ru", 465, "ssl",
                   note="Use a password for external apps, created in the Mail.ru security settings.")
MICROSOFT = Provider("Outlook.com / Microsoft 365", "outlook.office365.com", 995, "ssl",
                     "smtp-mail.outlook.com", 587, "starttls", note=MICROSOFT_NOTE, blocked=True)

PROVIDERS: dict[str, Provider] = {
    "gmail.com": GMAIL, "googlemail.com": GMAIL,
    "yahoo.com": YAHOO, "ymail.com": YAHOO, "rocketmail.com": YAHOO,
    "gmx.com": GMX_COM, "gmx.net": GMX_NET, "gmx.de": GMX_NET, "gmx.at": GMX_NET, "gmx.ch": GMX_NET,
    "zoho.com": ZOHO, "zohomail.com": ZOHO,
    "fastmail.com": FASTMAIL, "fastmail.fm": FASTMAIL,
    "icloud.com": ICLOUD, "me.com": ICLOUD, "mac.com": ICLOUD,
    "aol.com": AOL,
    "yandex.ru": YANDEX_RU, "yandex.com": YANDEX_COM,
    "mail.ru": MAIL_RU, "inbox.ru": MAIL_RU, "list.ru": MAIL_RU, "bk.ru": MAIL_RU,
    "outlook.com": MICROSOFT, "hotmail.com": MICROSOFT, "live.com": MICROSOFT,
    "msn.com": MICROSOFT, "office365.com": MICROSOFT,
}


def lookup(address: str) -> Provider | None:
    """Return the provider for an email address (or a bare domain), ignoring case; else None."""
    domain = address.strip().rpartition("@")[2].strip().rstrip(".").lower()
    return PROVIDERS.get(domain)
