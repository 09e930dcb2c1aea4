"""Demo data: three users of a small company and about thirty Leads and Contacts."""
from __future__ import annotations

import csv
from pathlib import Path

from crm import records, users
from models import Contact, Lead, User, db

DEMO_PASSWORD = "demo-pass-2026"
# (email, name, admin): the CEO administers the CRM; two sales reps work the leads.
DEMO_USERS = [
    ("margaret.chen@northwind.example", "Margaret Chen", True),
    ("daniel.ortiz@northwind.example", "Daniel Ortiz", False),
    ("priya.nair@northwind.example", "Priya Nair", False),
]
# Leads and Contacts (kind, first_name, last_name, company, email, phone); .example domains never
# reach a real mailbox.
RECORDS_FILE = Path(__file__).with_name("demo_records.csv")


def _records(kind: str) -> list[tuple[str, ...]]:
    with RECORDS_FILE.open(newline="", encoding="utf-8") as f:
        return [tuple(row)[1:] for row in csv.reader(f) if row[0] == kind]


LEADS, CONTACTS = _records("lead"), _records("contact")


def load_demo_records() -> list[User] | None:
    """Load the demo users, Leads and Contacts into an empty database and commit; returns the
    users (CEO first), or None if there were users already."""
    if users.count_users():
        return None
    created = [users.create_user(email, name, DEMO_PASSWORD, admin=admin) for email, name, admin in DEMO_USERS]
    # Leads belong to the two reps in turn, Contacts to all three.
    for rows, make, owners in ((LEADS, Lead, created[1:]), (CONTACTS, Contact, created)):
        for i, row in enumerate(rows):
            fields = dict(zip(("first_name", "last_name", "company", "email", "phone"), row))
            records.save(make(), {**fields, "owner_id": owners[i % len(owners)].id})
    db.session.commit()  # no mail yet, so no address needs filing
    return created
