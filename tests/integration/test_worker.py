"""Workers: due accounts, leases (FOR UPDATE SKIP LOCKED on PostgreSQL), Fetch now, the poller
thread, and the `flask mail` commands."""
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, select, text, update

from crm import users
from mail.inbound import leases, sync, worker
from models import AccountState, Email, MailAccount, db, utcnow
from tests.conftest import PASSWORD
from tests.integration.sync_support import add_account, count, emails_of, fresh, message, owner, peek, raw_contents

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 15


def wait_for(condition, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def account_row(account_id: int) -> MailAccount:
    fresh()
    return db.session.get(MailAccount, account_id)


def test_only_due_accounts_with_a_free_lease_are_claimed(mail_app, dovecot):
    rep, later = owner(), utcnow() + timedelta(hours=1)
    never_polled, overdue, not_yet, leased, expired, refused, refused_fetch_now, of_inactive = (
        add_account(mail_app, dovecot, rep, default=False, name=f"A{n}")[0] for n in range(8))
    overdue.next_poll_at = utcnow() - timedelta(seconds=1)
    not_yet.next_poll_at = later
    leased.lease_owner, leased.lease_until = "someone", later
    expired.lease_owner, expired.lease_until = "dead worker", utcnow() - timedelta(seconds=1)
    refused.state = refused_fetch_now.state = AccountState.AUTH_ERROR
    refused_fetch_now.poll_requested = True
    inactive = users.create_user("gone@example.com", "Gone", PASSWORD)
    inactive.active = False
    of_inactive.user_id = inactive.id
    db.session.commit()
    claimed = leases.claim_due_accounts("w1", limit=10, lease_s=60)
    assert claimed[0] == refused_fetch_now.id  # Fetch now first
    assert set(claimed) == {never_polled.id, overdue.id, expired.id, refused_fetch_now.id}
    for account_id in claimed:
        row = account_row(account_id)
        assert row.lease_owner == "w1" and row.lease_until > utcnow() + timedelta(seconds=50)
        assert not row.poll_requested
    assert leases.claim_due_accounts("w2", limit=10) == []  # all leased now
    leases.release(overdue.id, "w2")  # not w2's: nothing happens
    assert account_row(overdue.id).lease_owner == "w1"
    leases.release(overdue.id, "w1")
    assert leases.claim_due_accounts("w2", limit=10) == [overdue.id]


def test_nothing_is_claimed_while_the_add_on_is_off(mail_app, dovecot):
    from mail.org import set_mail_addon_enabled
    add_account(mail_app, dovecot, owner())
    set_mail_addon_enabled(False)
    assert leases.claim_due_accounts("w1") == []


def test_of_two_workers_racing_for_one_account_exactly_one_wins(mail_app, dovecot):
    account_id = add_account(mail_app, dovecot, owner())[0].id
    barrier, wins = threading.Barrier(4), []
    fresh()

    def race(name):
        with mail_app.app_context():
            barrier.wait()
            wins.append((name, leases.claim_account(account_id, name)))

    threads = [threading.Thread(target=race, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won for _, won in wins) == [False, False, False, True]
    winner = next(name for name, won in wins if won)
    assert account_row(account_id).lease_owner == winner


def test_claims_skip_rows_another_worker_has_locked(mail_app, dovecot):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's")
    rep = owner()
    first, second = (add_account(mail_app, dovecot, rep, default=False, name=n)[0] for n in ("one", "two"))
    other = create_engine(mail_app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with other.connect() as busy:  # another worker in the middle of claiming `first`
            busy.execute(text("SELECT id FROM mail_accounts WHERE id = :id FOR UPDATE"), {"id": first.id})
            started = time.monotonic()
            assert leases.claim_due_accounts("w2", limit=10) == [second.id]
            assert time.monotonic() - started < 1  # passed it by, did not wait for it
            busy.rollback()
    finally:
        other.dispose()
    assert leases.claim_due_accounts("w2", limit=10) == [first.id]


def test_two_workers_polling_together_fetch_each_message_exactly_once(mail_app, dovecot):
    rep = owner()
    sent = {}
    for n in range(6):
        account, login = add_account(mail_app, dovecot, rep, default=(n == 0), leave=n % 2 == 0, name=f"A{n}")
        sent[account.id] = (login, [message() for _ in range(12)])
        for raw in sent[account.id][1]:
            dovecot.deliver(login, raw)
    barrier, results = threading.Barrier(3), {}
    fresh()

    def work(name):
        with mail_app.app_context():
            barrier.wait()
            results[name] = worker.run_once(mail_app.extensions["mail"], name, limit=1)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    polled = [result.account_id for found in results.values() for result in found]
    assert sorted(polled) == sorted(sent)  # every account polled, by exactly one worker
    assert all(result.ok for found in results.values() for result in found)
    fresh()
    for account_id, (login, messages) in sent.items():
        assert sorted(raw_contents(account_id)) == sorted(messages)
        leave = account_row(account_id).leave_on_server
        assert dovecot.count(login) == (12 if leave else 0)
        assert account_row(account_id).lease_owner == ""


def test_run_once_schedules_each_account_and_gives_its_lease_back(mail_app, dovecot):
    account, login = add_account(mail_app, dovecot, owner())
    dovecot.deliver(login, message())
    [result] = worker.run_once(mail_app.extensions["mail"], "w1")
    row = account_row(account.id)
    assert result.fetched == 1 and (row.lease_owner, row.lease_until) == ("", None)
    assert row.next_poll_at > utcnow() + timedelta(seconds=row.poll_interval_s - 5)
    assert worker.run_once(mail_app.extensions["mail"], "w1") == []  # not due again yet


def test_fetch_now_polls_an_account_before_it_is_due(mail_app, dovecot):
    account, login = add_account(mail_app, dovecot, owner())
    account.next_poll_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    dovecot.deliver(login, message())
    assert worker.run_once(mail_app.extensions["mail"], "w1") == []
    worker.request_fetch_now(account.id)
    [result] = worker.run_once(mail_app.extensions["mail"], "w1")
    assert result.fetched == 1 and not account_row(account.id).poll_requested


def test_a_poll_renews_its_lease_and_stops_when_another_worker_took_it(mail_app, dovecot):
    account, login = add_account(mail_app, dovecot, owner(), leave=False)
    account_id = account.id
    for _ in range(6):
        dovecot.deliver(login, message())
    assert leases.claim_account(account_id, "w1", lease_s=30)
    renewals = []
    engine = db.engine

    def after_commit(session):
        with engine.begin() as other:
            done, total, until = other.execute(
                select(MailAccount.progress_done, MailAccount.progress_total, MailAccount.lease_until)
                .where(MailAccount.id == account_id)).one()
            if total == 6:
                renewals.append(until)
            if done == 2:  # after the first batch: the lease expired, another worker claimed it
                other.execute(update(MailAccount).where(MailAccount.id == account_id).values(lease_owner="w2"))

    event.listen(db.session, "after_commit", after_commit)
    try:
        result = sync.poll_account(mail_app.extensions["mail"], account_id, batch_size=2, lease_owner="w1", lease_s=30)
    finally:
        event.remove(db.session, "after_commit", after_commit)
    assert result.error.kind == "lease" and (result.fetched, result.deleted) == (2, 0)
    assert dovecot.count(login) == 6
    assert len(renewals) == 2 and renewals[0] < renewals[1]  # the first batch pushed the lease further
    row = account_row(account_id)
    assert row.state is AccountState.READY and row.lease_owner == "w2"  # w2's to record


def test_the_poller_thread_fetches_when_asked_and_stops_cleanly(mail_app, dovecot):
    account, login = add_account(mail_app, dovecot, owner())
    account.next_poll_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    account_id = account.id
    fresh()
    poller = worker.start_poller_thread(mail_app.app_context, mail_app.extensions["mail"], tick_s=0.1)
    try:
        dovecot.deliver(login, message("First"))
        worker.request_fetch_now(account_id)
        wait_for(lambda: peek(lambda: count(Email, Email.account_id == account_id)) == 1)
    finally:
        poller.stop(timeout_s=10)
    assert not poller.thread.is_alive()
    assert [e.subject for e in emails_of(account_id)] == ["First"]


def test_mail_poller_thread_starts_with_the_first_request_only_when_configured(app_factory, mail_cafile):
    quiet = app_factory()
    quiet.test_client().get("/signin")
    assert "mail_poller" not in quiet.extensions
    polling = app_factory(MAIL_POLLER="thread")
    assert "mail_poller" not in polling.extensions  # not at start-up: `flask db upgrade` must not poll
    polling.test_client().get("/signin")
    polling.test_client().get("/signin")
    poller = polling.extensions["mail_poller"]
    assert poller.thread.is_alive()
    poller.stop(timeout_s=10)
    assert not poller.thread.is_alive()


def test_flask_mail_fetch_says_what_it_did_and_fails_loudly(mail_app, dovecot, closed_port):
    rep = owner()
    good, login = add_account(mail_app, dovecot, rep)
    for _ in range(3):
        dovecot.deliver(login, message(sender="zed@nowhere.example"))
    runner = mail_app.test_cli_runner()
    out = runner.invoke(args=["mail", "fetch", "--account", str(good.id)])
    assert out.exit_code == 0, out.output
    assert f"Account {good.id} (Work <{login}@example.com>): fetched 3, linked 0, skipped 0, deleted 0." in out.output
    broken, _ = add_account(mail_app, dovecot, rep, default=False, name="Broken")
    broken.port = closed_port
    refused, _ = add_account(mail_app, dovecot, rep, default=False, name="Refused")
    refused.state = AccountState.AUTH_ERROR
    db.session.commit()
    out = runner.invoke(args=["mail", "fetch", "--all"])
    assert out.exit_code == 1
    assert f"The server refused the connection on port {closed_port}." in out.output
    assert "Refused" in out.output and "not polled: the server refused its password" in out.output
    assert f"Account {good.id} (Work" in out.output and "fetched 0" in out.output
    assert runner.invoke(args=["mail", "fetch"]).exit_code == 2  # neither --account nor --all
    missing = runner.invoke(args=["mail", "fetch", "--account", "9999"])
    assert missing.exit_code == 1 and "There is no mail account 9999." in missing.output


def test_flask_mail_worker_polls_until_sigterm(mail_app, dovecot):
    account, login = add_account(mail_app, dovecot, owner())
    account_id = account.id
    dovecot.deliver(login, message("Via the worker"))
    fresh()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": mail_app.config["SQLALCHEMY_DATABASE_URI"],
           "MAIL_SECRET_KEY": mail_app.config["MAIL_SECRET_KEY"], "INSTANCE_PATH": mail_app.instance_path,
           "MAIL_TLS_CA_FILE": mail_app.config["MAIL_TLS_CA_FILE"], "MAIL_ALLOW_LOCAL_SERVERS": "1"}
    child = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "mail", "worker", "--interval", "0.2"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: peek(lambda: count(Email, Email.account_id == account_id)) == 1)
        child.send_signal(signal.SIGTERM)
        output, _ = child.communicate(timeout=WAIT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, output
    assert f"Account {account_id}: fetched 1" in output and output.rstrip().endswith("Mail worker stopped.")
