"""Demo data: three users of a small company and about thirty Leads and Contacts."""
from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

from crm import records, users
from crm.org import org_settings
from mail import addon, matching, store
from mail.parsing import parse
from models import Contact, Direction, Lead, Record, SendState, SharingMode, db, utcnow

DEMO_PASSWORD = "demo-pass-2026"
# (email, name, admin): the CEO administers the CRM; two sales reps work the leads.
DEMO_USERS = [
    ("margaret.chen@northwind.example", "Margaret Chen", True),
    ("daniel.ortiz@northwind.example", "Daniel Ortiz", False),
    ("priya.nair@northwind.example", "Priya Nair", False),
]
# (first, last, company, email, phone); .example domains never reach a real mailbox.
LEADS = [
    ("Olivia", "Bennett", "Brightwater Logistics", "olivia.bennett@brightwater.example", "+1 415 555 0134"),
    ("Lucas", "Moreau", "Atelier Moreau", "lucas@ateliermoreau.example", "+33 1 70 55 01 22"),
    ("Hannah", "Schmidt", "Kessler Maschinenbau", "h.schmidt@kessler-mb.example", "+49 711 555 2040"),
    ("Kenji", "Watanabe", "Sakura Foods", "kenji.watanabe@sakurafoods.example", "+81 3 5555 0190"),
    ("Amara", "Okafor", "Lagos Solar Co", "amara@lagossolar.example", "+234 1 555 0147"),
    ("Ethan", "Clarke", "Clarke & Sons Builders", "ethan@clarkesons.example", "+44 20 7946 0321"),
    ("Sofia", "Rossi", "Trattoria Group", "sofia.rossi@trattoria.example", "+39 06 5555 0178"),
    ("Mateo", "Fernández", "Andes Coffee Traders", "mateo.fernandez@andescoffee.example", "+57 1 555 0166"),
    ("Chloe", "Martin", "Pixel Harbour", "chloe@pixelharbour.example", "+1 206 555 0112"),
    ("Noah", "Johansson", "Fjord Analytics", "noah.johansson@fjordanalytics.example", "+46 8 555 0150"),
    ("Isabella", "Costa", "Verde Pharma", "i.costa@verdepharma.example", "+55 11 5555 0190"),
    ("Liam", "O'Brien", "Harbourview Hotels", "liam.obrien@harbourview.example", "+353 1 555 0133"),
    ("Mei", "Lin", "Jade River Textiles", "mei.lin@jaderiver.example", "+86 21 5555 0109"),
    ("Arjun", "Mehta", "Mehta Precision", "arjun@mehtaprecision.example", "+91 22 5555 0184"),
    ("Emma", "Dubois", "Cloudberry Studio", "emma.dubois@cloudberry.example", "+32 2 555 0127"),
]
CONTACTS = [
    ("James", "Whitfield", "Summit Outdoor Gear", "james.whitfield@summitgear.example", "+1 303 555 0171"),
    ("Ava", "Thompson", "Summit Outdoor Gear", "ava.thompson@summitgear.example", "+1 303 555 0172"),
    ("Oliver", "Grant", "Granite Capital", "oliver.grant@granitecap.example", "+1 212 555 0143"),
    ("Zara", "Ahmed", "Crescent Health", "zara.ahmed@crescenthealth.example", "+971 4 555 0119"),
    ("Felix", "Wagner", "Alpen Energie", "felix.wagner@alpenenergie.example", "+43 1 555 0138"),
    ("Grace", "Kim", "Lotus Cosmetics", "grace.kim@lotuscosmetics.example", "+82 2 555 0155"),
    ("Samuel", "Adeyemi", "Baobab Telecom", "samuel.adeyemi@baobabtel.example", "+27 21 555 0162"),
    ("Lena", "Novak", "Adriatic Yachts", "lena.novak@adriaticyachts.example", "+385 1 555 0104"),
    ("Henry", "Walsh", "Walsh Legal", "henry@walshlegal.example", "+1 617 555 0199"),
    ("Yuki", "Tanaka", "Tanaka Robotics", "yuki.tanaka@tanakarobotics.example", "+81 6 5555 0125"),
    ("Camila", "Reyes", "Pacifica Shipping", "camila.reyes@pacifica.example", "+52 55 5555 0181"),
    ("Thomas", "Berg", "Nordlys Software", "thomas.berg@nordlys.example", "+47 22 55 50 16"),
    ("Aisha", "Rahman", "Crescent Health", "aisha.rahman@crescenthealth.example", "+971 4 555 0120"),
    ("William", "Hayes", "Hayes Farms", "will.hayes@hayesfarms.example", "+1 515 555 0157"),
    ("Elena", "Petrova", "Volga Instruments", "elena.petrova@volgainst.example", "+7 495 555 0193"),
]


def load_demo() -> list[tuple[str, str, bool]] | None:
    """Load the demo data into an empty database; returns the users, or None if there were any."""
    if users.count_users():
        return None
    created = [users.create_user(email, name, DEMO_PASSWORD, admin=admin) for email, name, admin in DEMO_USERS]
    # The demo shows mail, so the add-on starts enabled there (a real install starts disabled).
    org_settings().mail_addon_enabled = True
    reps = created[1:]
    for i, (first, last, company, email, phone) in enumerate(LEADS):
        records.save(Lead(), {"first_name": first, "last_name": last, "company": company, "email": email,
                              "phone": phone, "owner_id": reps[i % 2].id})
    for i, (first, last, company, email, phone) in enumerate(CONTACTS):
        records.save(Contact(), {"first_name": first, "last_name": last, "company": company, "email": email,
                                 "phone": phone, "owner_id": created[i % 3].id})
    load_demo_mail(created)
    return DEMO_USERS


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


def load_demo_mail(users_created: list) -> None:
    """Mail for the demo users, filed under their records, with a mix of sharing modes:
    the CEO Private, Daniel Public (his own company's domain excluded), Priya Custom."""
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
            email.direction, email.send_state, email.folder, email.is_read = Direction.SENT, SendState.SENT, "Sent", True
        matching.link_email(email, parsed.participants())
    db.session.commit()
    ceo, daniel, priya = users_created
    for user, mode, excluded in [(daniel, SharingMode.PUBLIC, ["northwind.example"]), (priya, SharingMode.CUSTOM, [])]:
        choice = addon.current_choice(user)
        choice.mode, choice.excluded = mode, excluded
        addon.save(user, choice)
    kenji = db.session.scalar(db.select(Lead).where(Lead.email == "kenji.watanabe@sakurafoods.example"))
    addon.set_share(priya, kenji.id, kenji.full_name, True)
