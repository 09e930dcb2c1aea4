"""Fetch now and account health on Settings > Mail > Mail Accounts, with a real Dovecot."""
from mail.inbound import worker
from models import MailAccount, db


def create_account(client, dovecot, login, password):
    client.post("/settings/mail/accounts/new", data={
        "name": "Work", "email": f"{login}@example.com", "host": dovecot.host, "port": dovecot.ssl_port,
        "security": "ssl", "username": login, "password": password, "leave": "leave"})
    return db.session.scalars(db.select(MailAccount)).one()


def test_creating_an_account_asks_for_its_first_poll_and_the_list_follows_it(rep, dovecot, mail_app):
    owner, client = rep
    login, password = dovecot.new_user()
    for n in range(2):
        dovecot.deliver(login, f"Subject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\nbody\r\n".encode())
    account = create_account(client, dovecot, login, password)
    assert account.poll_requested  # in the creation's own commit: no poll can come between
    page = client.get("/settings/mail/accounts").get_data(as_text=True)
    assert "Fetch asked for" in page and 'hx-trigger="every 1s"' in page
    assert worker.run_once(mail_app.extensions["mail"], "test-worker")[0].fetched == 2
    assert worker.run_once(mail_app.extensions["mail"], "test-worker") == []  # one poll, not two
    health = client.get(f"/settings/mail/accounts/{account.id}/health").get_data(as_text=True)
    assert "fetched 2, linked 0, skipped 0" in health and "every 1s" not in health


def test_fetch_now_asks_for_a_poll_and_the_health_shows_what_it_did(rep, dovecot, mail_app):
    owner, client = rep
    login, password = dovecot.new_user()
    account = create_account(client, dovecot, login, password)
    worker.run_once(mail_app.extensions["mail"], "test-worker")  # the first poll: nothing there yet
    for n in range(3):
        dovecot.deliver(login, f"Subject: m{n}\r\nMessage-ID: <m{n}@x>\r\n\r\nbody\r\n".encode())
    db.session.expire_all()
    assert not account.poll_requested
    response = client.post(f"/settings/mail/accounts/{account.id}/fetch", headers={"HX-Request": "true"})
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith(f'<div id="account-health-{account.id}"') and 'hx-trigger="every 1s"' in fragment
    db.session.expire_all()
    assert account.poll_requested
    worker.run_once(mail_app.extensions["mail"], "test-worker")
    health = client.get(f"/settings/mail/accounts/{account.id}/health").get_data(as_text=True)
    assert "fetched 3, linked 0, skipped 0" in health and "every 1s" not in health
    assert "fetched 3" in client.get("/settings/mail/accounts").get_data(as_text=True)


def test_fetch_now_on_another_users_account_is_a_404(rep, dovecot, mail_app):
    from crm import users
    owner, client = rep
    other = users.find_user("admin@example.com")
    account = MailAccount(user_id=other.id, name="A", email="a@example.com", host="h.example", port=995,
                          security="ssl", username="a", password_encrypted="x")
    db.session.add(account)
    db.session.commit()
    assert client.post(f"/settings/mail/accounts/{account.id}/fetch").status_code == 404
    assert client.get(f"/settings/mail/accounts/{account.id}/health").status_code == 404
    db.session.expire_all()
    assert not account.poll_requested
