"""Demo mail for the demo users (crm.demo), as if fetched from their mailboxes, in all three
sharing modes: the CEO Private, Daniel Public (his own company's domain excluded), Priya Custom."""
from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from mail.inbound import matching, store
from mail.inbound.parsing import parse
from mail.org import org_settings_for_update
from mail.reading import addon
from models import Direction, Lead, Record, SENT, SendState, SharingMode, User, db, utcnow

# Demo mail, as if fetched from each user's mailbox: (owner index, lead/contact email, subject, body, sent?)
DEMO_MAIL = [
    (1, "olivia.bennett@brightwater.example", "Quote for 40 pallets of cold-chain storage",
     "Hi Daniel,\n\nCould you send us a quote for 40 pallets of cold-chain storage from March?\n\nBest,\nOlivia", False),
    (1, "olivia.bennett@brightwater.example", "Re: Quote for 40 pallets of cold-chain storage",
     "Hi Olivia,\n\nAttached is our quote; the price holds until the end of the month.\n\nDaniel", True),
    (1, "lucas@ateliermoreau.example", "Showroom visit next Tuesday",
     "Bonjour Daniel,\n\nTuesday at 10:00 works for us. See you at the showroom.\n\nLucas", False),
    (1, "ethan@clarkesons.example", "Site survey results",
     "Daniel,\n\nThe site survey is done; we can start the fit-out in two weeks.\n\nEthan", False),
    (2, "kenji.watanabe@sakurafoods.example", "Distribution agreement draft",
     "Priya-san,\n\nPlease find our comments on the distribution agreement below.\n\nKenji", False),
    (2, "kenji.watanabe@sakurafoods.example", "Re: Distribution agreement draft",
     "Thank you Kenji, I have forwarded the comments to our legal team.\n\nPriya", True),
    (2, "amara@lagossolar.example", "Panels for the Ikeja warehouse",
     "Hello Priya,\n\nWe would like to order 120 panels for the Ikeja warehouse roof.\n\nAmara", False),
    (0, "oliver.grant@granitecap.example", "Board meeting: confidential figures",
     "Margaret,\n\nAhead of the board meeting, here are the confidential figures we discussed.\n\nOliver", False),
    (0, "zara.ahmed@crescenthealth.example", "Partnership proposal",
     "Dear Margaret,\n\nWe would be delighted to discuss a partnership with Northwind.\n\nZara", False),
]


def load_demo_mail(users_created: list[User]) -> None:
    """Mail for the demo users (CEO, Daniel, Priya), filed under their records; commits."""
    # The demo shows mail, so the add-on starts enabled there (a real install starts disabled).
    org_settings_for_update().mail_addon_enabled = True
    start = utcnow() - timedelta(days=len(DEMO_MAIL))
    for n, (owner_index, customer, subject, body, sent) in enumerate(DEMO_MAIL):
        owner = users_created[owner_index]
        message = EmailMessage()
        person = db.session.scalar(db.select(Record).where(Record.email == customer))
        me, them = formataddr((owner.name, owner.email)), formataddr((person.full_name, customer))
        message["From"], message["To"] = (me, them) if sent else (them, me)
        message["Subject"] = subject
        message["Date"] = format_datetime(start + timedelta(days=n, hours=n))
        message["Message-ID"] = make_msgid(domain="demo.example")
        message.set_content(body)
        raw = bytes(message)
        parsed = parse(raw, utcnow())
        email = store.store(owner.id, None, raw, parsed, crm_mailbox_id=None, settings=None)
        if sent:
            email.direction, email.send_state, email.folder, email.is_read = Direction.SENT, SendState.SENT, SENT, True
        matching.link_email(email, parsed.participants())
    db.session.commit()
    ceo, daniel, priya = users_created
    for user, mode, excluded in [(daniel, SharingMode.PUBLIC, ["northwind.example"]), (priya, SharingMode.CUSTOM, [])]:
        choice = addon.current_choice(user)
        choice.mode, choice.excluded = mode, excluded
        addon.save(user, choice)
    kenji = db.session.scalar(db.select(Lead).where(Lead.email == "kenji.watanabe@sakurafoods.example"))
    addon.set_share(priya, kenji.id, kenji.full_name, True)
