"""Demo data: three users of a small company and about thirty Leads and Contacts."""
from __future__ import annotations

from crm import records, users
from models import Contact, Lead, User, db

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


def load_demo_records() -> list[User] | None:
    """Load the demo users, Leads and Contacts into an empty database and commit; returns the
    users (CEO first), or None if there were users already."""
    if users.count_users():
        return None
    created = [users.create_user(email, name, DEMO_PASSWORD, admin=admin) for email, name, admin in DEMO_USERS]
    reps = created[1:]
    for i, (first, last, company, email, phone) in enumerate(LEADS):
        records.save(Lead(), {"first_name": first, "last_name": last, "company": company, "email": email,
                              "phone": phone, "owner_id": reps[i % 2].id})
    for i, (first, last, company, email, phone) in enumerate(CONTACTS):
        records.save(Contact(), {"first_name": first, "last_name": last, "company": company, "email": email,
                                 "phone": phone, "owner_id": created[i % 3].id})
    db.session.commit()  # no mail yet, so no address needs filing
    return created
