"""Well-known mail providers: fill in the server settings from the address's domain.

The table itself is data, in providers.toml beside this module: the providers' published
settings for third-party clients. A provider marked blocked cannot be added at all; the form
shows its note instead. `key` names the entry, which mail/oauth_providers.toml refers to when the
provider's addresses can sign in with OAuth 2.0 (Google, Microsoft).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

TABLE_FILE = Path(__file__).with_name("providers.toml")


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
    key: str = ""


def _load(path: Path) -> tuple[dict[str, str], dict[str, Provider]]:
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    notes = table.pop("notes")
    by_domain: dict[str, Provider] = {}
    for key, entry in table.items():
        note = notes.get(entry.get("note", ""), entry.get("note", "")).format(name=entry["name"])
        provider = Provider(entry.get("display", entry["name"]), *entry["pop"], *entry["smtp"],
                            note=note, blocked=entry.get("blocked", False), key=key)
        by_domain.update(dict.fromkeys(entry["domains"], provider))
    return notes, by_domain


_NOTES, PROVIDERS = _load(TABLE_FILE)
MICROSOFT_NOTE = _NOTES["microsoft"]


def lookup(address: str) -> Provider | None:
    """Return the provider for an email address (or a bare domain), ignoring case; else None."""
    domain = address.strip().rpartition("@")[2].strip().rstrip(".").lower()
    return PROVIDERS.get(domain)
