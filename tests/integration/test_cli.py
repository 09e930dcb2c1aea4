"""The command line: users create and demo."""
from crm import users
from crm.demo import DEMO_PASSWORD, DEMO_USERS
from models import Contact, Lead, db


def test_users_create_makes_a_user_who_can_sign_in(app, auth):
    result = app.test_cli_runner().invoke(args=["users", "create", "Boss@Example.com", "--name", "The Boss",
                                                "--password", "a-long-password", "--admin"])
    assert result.exit_code == 0 and "Created Administrator The Boss" in result.output
    user = users.find_user("boss@example.com")
    assert user.is_admin
    assert auth.signin("boss@example.com", "a-long-password").status_code == 303


def test_users_create_refuses_a_short_password_and_a_duplicate(app, make_user):
    runner = app.test_cli_runner()
    short = runner.invoke(args=["users", "create", "a@example.com", "--name", "A", "--password", "short"])
    assert short.exit_code != 0 and "at least 8 characters" in short.output
    make_user("b@example.com")
    dup = runner.invoke(args=["users", "create", "b@example.com", "--name", "B", "--password", "long-enough"])
    assert dup.exit_code != 0 and "already exists" in dup.output


def test_demo_loads_three_users_and_about_thirty_records_once(app, auth):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0 and DEMO_PASSWORD in first.output
    assert len(users.all_users()) == 3
    assert sum(u.is_admin for u in users.all_users()) == 1
    leads = db.session.scalar(db.select(db.func.count()).select_from(Lead))
    contacts = db.session.scalar(db.select(db.func.count()).select_from(Contact))
    assert 25 <= leads + contacts <= 40 and leads and contacts
    second = runner.invoke(args=["demo"])
    assert "already has users" in second.output and len(users.all_users()) == 3
    assert auth.signin(DEMO_USERS[1][0], DEMO_PASSWORD).status_code == 303


def test_demo_mail_shows_the_three_sharing_modes(app):
    from mail.reading import sharing
    from models import Email, EmailParticipant, SendAs
    app.test_cli_runner().invoke(args=["demo"])
    ceo, daniel, priya = (users.find_user(email) for email, _, _ in DEMO_USERS)
    emails = db.session.scalars(db.select(Email)).all()
    assert 250 <= len(emails) <= 350 and all(e.raw is not None and e.conversation_id for e in emails)
    conversations = {e.conversation_id for e in emails}
    assert len(conversations) < len(emails) / 2 and sum(e.has_attachments for e in emails) >= 20
    assert {e.owner_id for e in emails} == {ceo.id, daniel.id, priya.id}

    def with_customer(owner, address):
        ids = set(db.session.scalars(db.select(EmailParticipant.email_id).where(EmailParticipant.address == address)))
        return [e for e in emails if e.owner_id == owner.id and e.id in ids]

    def seen_by(viewer, found):
        assert found
        return {sharing.can_see(viewer, e.id) for e in found}

    assert seen_by(daniel, [e for e in emails if e.owner_id == ceo.id]) == {False}  # the CEO is Private
    assert seen_by(ceo, with_customer(daniel, "olivia.bennett@brightwater.example")) == {True}  # Daniel is Public
    assert seen_by(ceo, with_customer(daniel, "i.costa@verdepharma.example")) == {False}  # ... but excludes her domain
    assert seen_by(daniel, with_customer(priya, "kenji.watanabe@sakurafoods.example")) == {True}  # Priya shares Kenji
    assert seen_by(daniel, with_customer(priya, "ethan@clarkesons.example")) == {False}  # but not Ethan
    identities = db.session.scalars(db.select(SendAs)).all()
    assert len(identities) == 3 and all(i.verified and i.host == "127.0.0.1" for i in identities)
