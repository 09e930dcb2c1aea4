"""Mail sync against a real Dovecot: the ledger, storing, deleting, matching, consolidation, health."""
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from mail.inbound import accounts, batches, leases, sync, worker
from mail.inbound.fetch import FetchSession
from mail.inbound.store import TOO_LARGE_NOTE
from models import (AccountState, AddonSettings, ConsolidateAs, Email, EmailParticipant, FetchedMessage, FetchState,
                    MailAccount, RecordKind, db, utcnow)
from tests.integration.sync_support import (MailboxServer, add_account, add_fake_account, count, emails_of, fresh,
                                            lead, ledger, links_of, message, owner, poll, raw_contents,
                                            server_bodies, subjects)


@pytest.fixture
def rep(mail_app):
    return owner()


@pytest.fixture
def after_commit():
    """after_commit(fn): call fn(session) after every commit of the app's sessions, in this test."""
    added = []

    def listen(fn):
        event.listen(db.session, "after_commit", fn)
        added.append(fn)

    yield listen
    for fn in added:
        event.remove(db.session, "after_commit", fn)


def test_new_mail_is_fetched_oldest_first_in_batches_and_left_on_the_server(mail_app, dovecot, rep, after_commit):
    account, login = add_account(mail_app, dovecot, rep)
    sent = [message(f"Subject {n}") for n in range(7)]
    for raw in sent:
        dovecot.deliver(login, raw)
    commits = []
    after_commit(lambda session: commits.append(1))
    result = poll(mail_app, account.id, batch_size=3)
    fresh()
    assert (result.fetched, result.deleted, result.errors) == (7, 0, [])
    assert subjects(account.id) == [f"Subject {n}" for n in range(7)]  # oldest first
    assert raw_contents(account.id) == sent  # byte for byte as the server gave them
    assert len(commits) >= 3 + 1  # a commit per batch of at most 3, then the health
    assert dovecot.count(login) == 7
    rows = ledger(account.id)
    assert [row.state for row in rows] == [FetchState.FETCHED] * 7
    assert len({row.uidl for row in rows}) == 7 and all(row.uidl for row in rows)
    emails = emails_of(account.id)
    assert [row.email_id for row in rows] == [e.id for e in emails]
    assert [row.size for row in rows] == [len(raw) for raw in sent]
    assert [row.sha256 for row in rows] == [e.raw.sha256 for e in emails]
    assert [row.message_id for row in rows] == [e.message_id for e in emails]


def test_a_second_poll_fetches_only_what_is_new(mail_app, dovecot, rep):
    account, login = add_account(mail_app, dovecot, rep)
    for _ in range(3):
        dovecot.deliver(login, message())
    assert poll(mail_app, account.id).fetched == 3
    dovecot.deliver(login, message("Late one"))
    result = poll(mail_app, account.id)
    fresh()
    assert (result.fetched, result.recognised, result.on_server) == (1, 0, 4)
    assert count(Email, Email.account_id == account.id) == 4 and subjects(account.id)[-1] == "Late one"
    assert poll(mail_app, account.id).fetched == 0


def test_delete_mode_deletes_only_messages_whose_email_is_committed(mail_app, dovecot, rep, monkeypatch):
    account, login = add_account(mail_app, dovecot, rep, leave=False)
    account_id, engine = account.id, db.engine
    for _ in range(5):
        dovecot.deliver(login, message())
    committed_at_dele = []
    real_dele = FetchSession.dele

    def dele(session, number):
        with engine.connect() as other:  # another connection sees only what is committed
            committed_at_dele.append(other.scalar(select(db.func.count()).select_from(FetchedMessage).where(
                FetchedMessage.account_id == account_id, FetchedMessage.email_id.is_not(None))))
        real_dele(session, number)

    monkeypatch.setattr(FetchSession, "dele", dele)
    result = poll(mail_app, account_id, batch_size=2)
    fresh()
    assert (result.fetched, result.deleted) == (5, 5)
    assert committed_at_dele == [5] * 5
    assert dovecot.count(login) == 0 and count(Email, Email.account_id == account.id) == 5
    assert [row.state for row in ledger(account.id)] == [FetchState.DELETED] * 5


def test_messages_committed_by_a_poll_that_crashed_before_dele_are_deleted_without_a_second_email(
        mail_app, dovecot, rep, monkeypatch):
    account, login = add_account(mail_app, dovecot, rep, leave=False)
    for _ in range(4):
        dovecot.deliver(login, message())

    def crash(session, number):
        raise RuntimeError("the worker died here")

    monkeypatch.setattr(FetchSession, "dele", crash)
    crashed = poll(mail_app, account.id)
    fresh()
    assert crashed.fetched == 4 and not crashed.ok and dovecot.count(login) == 4  # no QUIT: nothing deleted
    assert db.session.get(MailAccount, account.id).state is AccountState.ERROR
    monkeypatch.undo()
    result = poll(mail_app, account.id)
    fresh()
    # Downloaded again and recognised by their bytes: only those vouch for a DELE (issue 9.1).
    assert (result.fetched, result.recognised, result.deleted) == (0, 4, 4)
    assert dovecot.count(login) == 0 and count(Email, Email.account_id == account.id) == 4
    assert [row.state for row in ledger(account.id)] == [FetchState.DELETED] * 4


def test_leave_mode_forgets_messages_deleted_on_the_server_and_keeps_their_emails(mail_app, dovecot, rep):
    account, login = add_account(mail_app, dovecot, rep)
    for _ in range(3):
        dovecot.deliver(login, message())
    poll(mail_app, account.id)
    first = sorted((dovecot.maildir(login) / "cur").iterdir()) + sorted((dovecot.maildir(login) / "new").iterdir())
    first[0].unlink()  # deleted by another client
    result = poll(mail_app, account.id)
    fresh()
    assert (result.fetched, result.forgotten, result.on_server) == (0, 1, 2)
    assert len(ledger(account.id)) == 2 and count(Email, Email.account_id == account.id) == 3


def test_a_server_that_renumbers_its_uidls_does_not_deliver_everything_twice(mail_app, dovecot, rep):
    account, login = add_account(mail_app, dovecot, rep)
    for _ in range(3):
        dovecot.deliver(login, message())
    poll(mail_app, account.id)
    old_uidls = {row.uidl for row in ledger(account.id)}
    (dovecot.maildir(login) / "dovecot-uidlist").unlink()  # Dovecot starts a new uidvalidity
    result = poll(mail_app, account.id)
    fresh()
    assert (result.fetched, result.recognised, result.forgotten) == (0, 3, 3)
    rows = ledger(account.id)
    assert len(rows) == 3 and not old_uidls & {row.uidl for row in rows}
    assert count(Email, Email.account_id == account.id) == 3


@pytest.mark.parametrize("leave", [True, False], ids=["leave", "delete"])
def test_a_message_over_the_size_limit_is_listed_from_its_headers_and_never_deleted(mail_app, dovecot, rep, leave):
    account, login = add_account(mail_app, dovecot, rep, leave=leave)
    dovecot.deliver(login, message("Small"))
    big = message("Huge report", size=6000)
    dovecot.deliver(login, big)
    result = poll(mail_app, account.id, max_message_bytes=4000)
    fresh()
    assert (result.fetched, result.skipped) == (1, 1)
    small, huge = emails_of(account.id)
    assert small.subject == "Small" and small.raw is not None
    assert huge.subject == "Huge report" and huge.parse_notes.splitlines()[0] == TOO_LARGE_NOTE
    assert (huge.raw_id, huge.text_body, huge.size) == (None, "", len(big))
    skipped = [row for row in ledger(account.id) if row.state is FetchState.SKIPPED]
    assert [(row.reason, row.email_id) for row in skipped] == [(TOO_LARGE_NOTE, huge.id)]
    assert dovecot.count(login) == (2 if leave else 1)  # the big one stays, whatever the mode

    again = poll(mail_app, account.id, max_message_bytes=4000)
    fresh()
    assert (again.fetched, again.skipped, again.deleted) == (0, 1, 0)
    assert count(Email, Email.account_id == account.id) == 2

    raised = poll(mail_app, account.id, max_message_bytes=10_000)  # the limit was raised
    fresh()
    assert (raised.fetched, raised.skipped) == (1, 0)
    assert subjects(account.id) == ["Small", "Huge report"]  # the headers-only entry was replaced
    assert raw_contents(account.id)[-1] == big
    assert dovecot.count(login) == (2 if leave else 0)


@pytest.mark.parametrize("crm_account", ["default", "chosen"])
def test_only_the_crm_mailbox_is_matched_to_records(mail_app, dovecot, rep, crm_account):
    record = lead("ann@customer.example")
    main, main_login = add_account(mail_app, dovecot, rep, default=True, name="Main")
    other, other_login = add_account(mail_app, dovecot, rep, default=False, name="Other")
    if crm_account == "chosen":  # the add-on settings name the other account as the CRM mailbox
        db.session.add(AddonSettings(user_id=rep.id, mailbox_account_id=other.id))
        db.session.commit()
    crm, plain = (main, other) if crm_account == "default" else (other, main)
    for login in (main_login, other_login):
        dovecot.deliver(login, message(sender="Ann@Customer.example"))
    assert poll(mail_app, crm.id).linked == 1
    assert poll(mail_app, plain.id).linked == 0
    fresh()
    [crm_email], [plain_email] = emails_of(crm.id), emails_of(plain.id)
    assert links_of(crm_email.id) == {record.id} and links_of(plain_email.id) == set()


def test_an_email_is_linked_to_every_record_in_from_to_and_cc_by_any_of_their_addresses(mail_app, dovecot, rep):
    by_from = lead("ann@customer.example")
    by_to = lead("bob@customer.example", kind=RecordKind.CONTACT)
    by_secondary = lead("carol@old.example", secondary="carol@new.example")
    bystander = lead("dave@elsewhere.example")
    account, login = add_account(mail_app, dovecot, rep)
    dovecot.deliver(login, message(sender="ann@customer.example", to="Bob <BOB@customer.example>, rep@example.com",
                                   cc="carol@new.example"))
    result = poll(mail_app, account.id)
    fresh()
    [email] = emails_of(account.id)
    assert result.linked == 1
    assert links_of(email.id) == {by_from.id, by_to.id, by_secondary.id}
    assert bystander.id not in links_of(email.id)
    parts = db.session.execute(select(EmailParticipant.role, EmailParticipant.address, EmailParticipant.domain)
                               .where(EmailParticipant.email_id == email.id)).all()
    assert sorted(parts) == sorted([("from", "ann@customer.example", "customer.example"),
                                    ("to", "bob@customer.example", "customer.example"),
                                    ("to", "rep@example.com", "example.com"),
                                    ("cc", "carol@new.example", "new.example")])


@pytest.mark.parametrize("mode", [ConsolidateAs.FOLDER, ConsolidateAs.LABEL])
def test_customer_mail_is_consolidated_into_a_folder_or_under_a_label(mail_app, dovecot, rep, mode):
    lead("ann@customer.example")
    db.session.add(AddonSettings(user_id=rep.id, consolidate=True, consolidate_as=mode, consolidate_name="Clients"))
    db.session.commit()
    account, login = add_account(mail_app, dovecot, rep)
    dovecot.deliver(login, message("From a customer", sender="ann@customer.example"))
    dovecot.deliver(login, message("From a stranger", sender="zed@nowhere.example"))
    poll(mail_app, account.id)
    fresh()
    customer, stranger = emails_of(account.id)
    if mode is ConsolidateAs.FOLDER:
        assert (customer.folder, customer.label) == ("Clients", "")
    else:
        assert (customer.folder, customer.label) == ("Inbox", "Clients")
    assert (stranger.folder, stranger.label) == ("Inbox", "")


def test_without_consolidation_customer_mail_stays_in_the_inbox(mail_app, dovecot, rep):
    lead("ann@customer.example")
    db.session.add(AddonSettings(user_id=rep.id, consolidate=False, consolidate_name="Clients"))
    db.session.commit()
    account, login = add_account(mail_app, dovecot, rep)
    dovecot.deliver(login, message(sender="ann@customer.example"))
    poll(mail_app, account.id)
    fresh()
    [email] = emails_of(account.id)
    assert (email.folder, email.label, len(links_of(email.id))) == ("Inbox", "", 1)


def test_a_successful_poll_records_its_health_and_schedules_the_next(mail_app, dovecot, rep):
    lead("ann@customer.example")
    account, login = add_account(mail_app, dovecot, rep)
    account.poll_interval_s, account.backoff_s, account.state = 120, 600, AccountState.ERROR
    account.last_error = "old trouble"
    db.session.commit()
    dovecot.deliver(login, message(sender="ann@customer.example"))
    dovecot.deliver(login, message(sender="zed@nowhere.example"))
    dovecot.deliver(login, message("Big", size=5000))
    before = utcnow()
    poll(mail_app, account.id, max_message_bytes=4000)
    fresh()
    account = db.session.get(MailAccount, account.id)
    assert account.state is AccountState.READY and account.last_error == ""
    assert (account.last_poll_fetched, account.last_poll_linked, account.last_poll_skipped) == (2, 1, 1)
    assert account.backoff_s == 0 and account.last_poll_at >= before
    assert timedelta(seconds=119) <= account.next_poll_at - account.last_poll_at <= timedelta(seconds=121)
    assert (account.progress_done, account.progress_total) == (3, 3)


def test_progress_is_committed_with_each_batch(mail_app, dovecot, rep, after_commit):
    account, login = add_account(mail_app, dovecot, rep)
    account_id = account.id
    for _ in range(7):
        dovecot.deliver(login, message())
    downloads, committed = [], []

    def read_progress(session):
        with db.engine.connect() as other:  # what a page showing the progress reads
            committed.append(tuple(other.execute(select(MailAccount.progress_done, MailAccount.progress_total)
                                                 .where(MailAccount.id == account_id)).one()))

    after_commit(read_progress)
    poll(mail_app, account.id, batch_size=3, progress=lambda done, total: downloads.append((done, total)))
    assert downloads == [(n, 7) for n in range(1, 8)]
    started = committed.index((0, 7))
    assert committed[started:] == [(0, 7), (3, 7), (6, 7), (7, 7), (7, 7)]  # start, three batches, health


def test_a_refused_password_stops_polling_until_the_password_changes(mail_app, dovecot, rep):
    account, login = add_account(mail_app, dovecot, rep)
    real_password = dovecot.users[login]
    dovecot.deliver(login, message())
    account.password_encrypted = mail_app.extensions["mail"].box.encrypt("wrong password")
    db.session.commit()
    result = poll(mail_app, account.id)
    fresh()
    account = db.session.get(MailAccount, account.id)
    assert result.error.kind == "auth" and "rejected the username or password" in account.last_error
    assert account.state is AccountState.AUTH_ERROR and "wrong password" not in account.last_error
    assert account.backoff_s == 300 and account.next_poll_at is None  # waits for a new password
    assert leases.claim_due_accounts("w1") == []
    worker.request_fetch_now(account.id)  # Fetch now still tries, and backs off further
    assert leases.claim_due_accounts("w1") == [account.id]
    worker.poll_claimed(mail_app.extensions["mail"], account.id, "w1")
    fresh()
    account = db.session.get(MailAccount, account.id)
    assert account.state is AccountState.AUTH_ERROR and account.backoff_s == 600

    report = accounts.change_password(mail_app.extensions["mail"], account, real_password)
    assert report.ok and account.state is AccountState.READY
    assert leases.claim_due_accounts("w1") == [account.id]  # due at once
    result = worker.poll_claimed(mail_app.extensions["mail"], account.id, "w1")
    fresh()
    account = db.session.get(MailAccount, account.id)
    assert result.fetched == 1 and account.state is AccountState.READY and account.backoff_s == 0


def test_other_failures_back_off_doubling_up_to_an_hour_and_recover_by_themselves(mail_app, dovecot, rep,
                                                                                   closed_port):
    account, login = add_account(mail_app, dovecot, rep)
    dovecot.deliver(login, message())
    account.port = closed_port
    db.session.commit()
    backoffs = []
    for _ in range(6):
        before = utcnow()
        result = poll(mail_app, account.id)
        fresh()
        account = db.session.get(MailAccount, account.id)
        backoffs.append(account.backoff_s)
        assert result.error.kind == "refused" and account.state is AccountState.ERROR
        assert account.next_poll_at - before >= timedelta(seconds=account.backoff_s)
        assert account.last_error == f"The server refused the connection on port {closed_port}."
    assert backoffs == [300, 600, 1200, 2400, 3600, 3600]
    account.port = dovecot.ssl_port
    db.session.commit()
    assert poll(mail_app, account.id).fetched == 1
    fresh()
    account = db.session.get(MailAccount, account.id)
    assert (account.state, account.backoff_s, account.last_error) == (AccountState.READY, 0, "")


def test_a_server_without_uidl_is_deduplicated_by_message_id_and_content(mail_app, rep):
    first, second = message("One", message_id="one@x.example"), message("Two", message_id="two@x.example")
    same_id_other_content = message("Two, edited", message_id="two@x.example")
    with MailboxServer([first, second], uidl=False) as server:
        account = add_fake_account(mail_app, server, rep)
        assert poll(mail_app, account.id).fetched == 2
        before = len(server.commands)
        result = poll(mail_app, account.id)  # no UIDL: recognised by Message-ID and size
        assert (result.fetched, result.recognised, result.errors) == (0, 0, [])
        assert [c for c in server.commands[before:] if c.startswith(("RETR", "TOP"))] == ["TOP 1 0", "TOP 2 0"]
        server.add(same_id_other_content)
        assert poll(mail_app, account.id).fetched == 1
        fresh()
        assert subjects(account.id) == ["One", "Two", "Two, edited"]
        assert db.session.get(MailAccount, account.id).uidl_supported is False
        assert all(row.uidl is None for row in ledger(account.id))


def test_a_server_without_uidl_in_delete_mode_deletes_only_what_is_stored(mail_app, rep, monkeypatch):
    with MailboxServer([message("Good"), message("Bad"), message("Good too")], uidl=False) as server:
        account = add_fake_account(mail_app, server, rep, leave=False)
        real = batches.store.store_many

        def refuse_bad(owner_id, account_id, messages, **kw):
            if any(m.parsed.subject == "Bad" for m in messages):
                raise ValueError("cannot store this one")
            return real(owner_id, account_id, messages, **kw)

        monkeypatch.setattr(batches.store, "store_many", refuse_bad)
        result = poll(mail_app, account.id)
        assert (result.fetched, result.deleted, len(result.errors)) == (2, 2, 1)
        assert len(server.messages) == 1 and b"Subject: Bad" in server.messages[0][1]
        monkeypatch.undo()
        result = poll(mail_app, account.id)
        fresh()
        assert (result.fetched, result.deleted) == (1, 1) and server.messages == []
        assert sorted(subjects(account.id)) == ["Bad", "Good", "Good too"]


def test_gmail_recent_mode_window_fetches_each_message_once(mail_app, rep):
    """recent: shows the last 30 days in every session: old ones drop out, new ones come in."""
    a, b, c, d = (message(name) for name in "abcd")
    with MailboxServer() as server:
        uids = [server.add(raw) for raw in (a, b, c)]
        account = add_fake_account(mail_app, server, rep)
        assert poll(mail_app, account.id).fetched == 3
        server.remove(uids[0])  # a is older than 30 days now
        server.add(d)
        result = poll(mail_app, account.id)
        fresh()
        assert (result.fetched, result.forgotten, result.on_server) == (1, 1, 3)
        assert subjects(account.id) == ["a", "b", "c", "d"]
        assert poll(mail_app, account.id).fetched == 0


def test_a_message_that_cannot_be_stored_is_reported_and_retried_while_the_rest_arrive(mail_app, dovecot, rep,
                                                                                         monkeypatch):
    account, login = add_account(mail_app, dovecot, rep)
    for name in ("Fine", "Poison", "Also fine"):
        dovecot.deliver(login, message(name))
    real = batches.store.store_many

    def poison(owner_id, account_id, messages, **kw):
        if any(m.parsed.subject == "Poison" for m in messages):
            raise KeyError("a bug")
        return real(owner_id, account_id, messages, **kw)

    monkeypatch.setattr(batches.store, "store_many", poison)
    result = poll(mail_app, account.id)
    fresh()
    assert result.fetched == 2 and len(result.errors) == 1 and "Poison" in result.errors[0]
    account = db.session.get(MailAccount, account.id)
    assert account.state is AccountState.ERROR and "Poison" in account.last_error
    assert account.backoff_s == 0  # the rest of the mail keeps coming at the normal pace
    assert subjects(account.id) == ["Fine", "Also fine"] and len(ledger(account.id)) == 2
    monkeypatch.undo()
    assert poll(mail_app, account.id).fetched == 1
    fresh()
    assert sorted(subjects(account.id)) == ["Also fine", "Fine", "Poison"]
    assert db.session.get(MailAccount, account.id).state is AccountState.READY


def test_raw_bytes_come_back_exactly_as_the_server_sent_them(mail_app, dovecot, rep):
    account, login = add_account(mail_app, dovecot, rep)
    odd = (b"Subject: dots and spaces\r\nMessage-ID: <odd@x.example>\r\n\r\n.leading dot\r\n..two dots\r\n"
           b"trailing space \r\n\r\n.\r\n" + bytes(range(128, 256)) + b"\r\n")
    dovecot.deliver(login, odd)
    poll(mail_app, account.id)
    fresh()
    assert raw_contents(account.id) == [odd] == server_bodies(dovecot, login)
