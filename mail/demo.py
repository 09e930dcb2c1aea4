"""Demo mail for the demo users (crm.demo): about 300 emails in conversations between the three
users and their Leads and Contacts, stored the way fetched mail is (mail.inbound.store, from
each user's CRM mailbox), in all three sharing modes: the CEO Private, Daniel Public (a client
under NDA and his own company's domain excluded), Priya Custom (Share Email ticked on two Leads).

Each user gets a CRM mailbox (never fetched: the demo's mail is loaded here) and a verified Send
Mail As identity that points at the demo's local mail sink (scripts/mail_sink.py), so Reply and
Send Email really send and the sent copy joins its conversation. Nothing leaves the machine.
"""
from __future__ import annotations

import random
import tomllib
import zlib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from mail.inbound import store
from mail.inbound.parsing import parse
from mail.org import org_settings_for_update
from mail.reading import addon
from models import (AccountState, AddonSettings, Approval, Direction, Email, Lead, MailAccount, Record, SENT,
                    SendAs, SendState, Security, SharingMode, User, db, utcnow)

CONVERSATIONS_FILE = Path(__file__).with_name("demo_conversations.toml")
SINK_HOST, SINK_PORT = "127.0.0.1", 2525
SEED = 12  # the same demo every time
TOPICS_PER_RECORD = (3, 3, 4)
DAYS_BACK = 90
# Never polled: the demo's mail is loaded, not fetched (a poll would meet no server).
NEVER = datetime(9999, 1, 1, tzinfo=timezone.utc)
DANIEL_EXCLUDES = ["verdepharma.example", "northwind.example"]  # a client under NDA; internal mail
PRIYA_SHARES = ["kenji.watanabe@sakurafoods.example", "lucas@ateliermoreau.example"]
ATTACHMENTS = {  # extension: (content type, content)
    "pdf": ("application/pdf", b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
                               b"2 0 obj<</Type/Pages/Count 0/Kids[]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"),
    "csv": ("text/csv", b"item,quantity,unit price\ncold-chain pallet,40,118.00\ndry pallet,120,42.50\n"),
    "jpg": ("image/jpeg", bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")),
}


def load_demo_mail(users_created: list[User], encrypt, sink: tuple[str, int] = (SINK_HOST, SINK_PORT)) -> int:
    """Mailboxes, identities and mail for the demo users (CEO, Daniel, Priya); commits.

    `encrypt` is the app's SecretBox.encrypt (the stored passwords are never used). Returns how
    many emails were loaded.
    """
    # The demo shows mail, so the add-on starts enabled there (a real install starts disabled).
    org_settings_for_update().mail_addon_enabled = True
    mailboxes = {user.id: _mailbox_and_identity(user, encrypt, sink) for user in users_created}
    db.session.flush()
    ceo, daniel, priya = users_created
    for user, mode, excluded in [(ceo, SharingMode.PRIVATE, []), (daniel, SharingMode.PUBLIC, DANIEL_EXCLUDES),
                                 (priya, SharingMode.CUSTOM, [])]:
        choice = addon.current_choice(user)
        choice.mode, choice.excluded, choice.mailbox_account_id = mode, excluded, mailboxes[user.id].id
        addon.save(user, choice)
    count = _load_conversations(users_created, mailboxes)
    for address in PRIYA_SHARES:
        lead = db.session.scalar(db.select(Lead).where(Lead.email == address))
        addon.set_share(priya, lead.id, lead.full_name, True)
    db.session.commit()
    return count


def _mailbox_and_identity(user: User, encrypt, sink: tuple[str, int]) -> MailAccount:
    account = MailAccount(user_id=user.id, name="Work mailbox (demo: loaded, not fetched)", email=user.email,
                          host="pop.northwind.example", port=995, security=Security.SSL, username=user.email,
                          password_encrypted=encrypt("demo-not-used"), is_default=True, state=AccountState.READY,
                          next_poll_at=NEVER)
    # Verified directly: the demo has no relay for codes, and its sink accepts any sender.
    identity = SendAs(user_id=user.id, from_name=user.name, from_address=user.email, host=sink[0], port=sink[1],
                      security=Security.NONE, username="", password_encrypted=encrypt(""), verified=True,
                      approval=Approval.NONE)
    db.session.add_all([account, identity])
    return account


def _load_conversations(users_created: list[User], mailboxes: dict[int, MailAccount]) -> int:
    topics = tomllib.loads(CONVERSATIONS_FILE.read_text(encoding="utf-8"))["topic"]
    rng = random.Random(SEED)
    now = utcnow()
    by_owner: dict[int, list[tuple[bytes, bool]]] = {u.id: [] for u in users_created}
    owners = {u.id: u for u in users_created}
    records = db.session.scalars(db.select(Record).where(Record.email != "").order_by(Record.id)).all()
    for record in records:
        owner = owners[record.owner_id]
        for topic in rng.sample(topics, rng.choice(TOPICS_PER_RECORD)):
            start = now - timedelta(days=rng.uniform(2, DAYS_BACK))
            by_owner[owner.id] += _conversation(owner, record, topic, start, rng, now)
    count = 0
    for owner_id, messages in by_owner.items():
        messages.sort(key=lambda m: m[2])
        incoming = [store.Incoming(raw, parse(raw, now), len(raw)) for raw, _, _ in messages]
        mailbox = mailboxes[owner_id]
        stored = store.store_many(owner_id, mailbox.id, incoming, crm_mailbox_id=mailbox.id,
                                  settings=db.session.get(AddonSettings, owner_id))
        for done, (_, sent, when) in zip(stored, messages):
            email = db.session.get(Email, done.email_id)
            if sent:  # what mail.outbound.outbox sets on the sent copy
                email.direction, email.send_state, email.folder, email.is_read = (
                    Direction.SENT, SendState.SENT, SENT, True)
            else:
                email.is_read = when < now - timedelta(days=10)  # the last days' mail is unread
        count += len(stored)
    return count


def _conversation(owner: User, record: Record, topic: dict, start: datetime, rng: random.Random,
                  now: datetime) -> list[tuple[bytes, bool, datetime]]:
    """The raw messages of one conversation, each with "sent by the owner?" and its date."""
    fill = {"first": record.first_name or record.last_name, "company": record.company or record.last_name,
            "rep": owner.name.split()[0]}
    subject = topic["subject"].format(**fill)
    me, them = formataddr((owner.name, owner.email)), formataddr((record.full_name, record.email))
    messages, ids, when, previous = [], [], start, None
    for n, step in enumerate(topic["messages"]):
        when = min(when + timedelta(hours=rng.uniform(2, 40)), now - timedelta(minutes=5 * n + 1))
        sent = step["from"] == "rep"
        message = EmailMessage()
        message["From"], message["To"] = (me, them) if sent else (them, me)
        message["Subject"] = subject if n == 0 else f"Re: {subject}"
        message["Date"] = format_datetime(when)
        message_id = f"<demo-{record.id}-{zlib.crc32(subject.encode())}-{n}@{(owner if sent else record).email.split('@')[1]}>"
        message["Message-ID"] = message_id
        if ids and not topic.get("no_threading"):
            message["In-Reply-To"], message["References"] = ids[-1], " ".join(ids)
        body = step["body"].format(**fill)
        if sent:
            body += f"\n\n-- \n{owner.name}\nNorthwind Traders"
        if previous is not None:
            quoted = "\n".join("> " + line for line in previous[1].splitlines())
            body += f"\n\nOn {format_datetime(previous[0])}, {previous[2]} wrote:\n{quoted}"
        message.set_content(body)
        if "attach" in step:
            content_type, content = ATTACHMENTS[step["attach"].rsplit(".", 1)[1]]
            maintype, subtype = content_type.split("/")
            message.add_attachment(content, maintype=maintype, subtype=subtype, filename=step["attach"])
        messages.append((bytes(message), sent, when))
        ids.append(message_id)
        previous = (when, step["body"].format(**fill), owner.name if sent else record.full_name)
    return messages
