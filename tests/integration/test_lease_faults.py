"""Leases that tell the truth (issue 9.2): a running poll keeps its short lease alive with a
heartbeat, a dead worker's accounts are taken over (at once on its own host), and the CLI says who
holds a lease and until when."""
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from mail.inbound import leases
from models import Email, MailAccount, db, reads_only, utcnow
from tests.integration.sync_support import add_account, count, fresh, ledger, message, owner, raw_contents

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 800
CLI_TIMEOUT_S = 120


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def hold(account_id: int, owner_name: str, seconds: float) -> None:
    db.session.execute(db.update(MailAccount).where(MailAccount.id == account_id).values(
        lease_owner=owner_name, lease_until=utcnow() + timedelta(seconds=seconds)))
    db.session.commit()


def test_a_lease_owner_names_its_kind_host_and_process():
    name = leases.new_worker_id("cli")
    assert leases.LeaseOwner.parse(name) == leases.LeaseOwner("cli", socket.gethostname(), os.getpid())
    assert leases.LeaseOwner.parse("worker-mail-01.example-4242-ab12cd") == leases.LeaseOwner(
        "worker", "mail-01.example", 4242)
    assert leases.LeaseOwner.parse("someone") is None and leases.LeaseOwner.parse("w-h-x-y") is None


def test_a_worker_on_the_same_host_takes_over_at_once_when_the_owner_process_is_gone(mail_app, dovecot):
    account, _ = add_account(mail_app, dovecot, owner())
    hold(account.id, f"cli-{socket.gethostname()}-{dead_pid()}-abcdef", leases.LEASE_S)
    assert leases.claim_account(account.id, "w2")
    hold(account.id, f"cli-{socket.gethostname()}-{os.getpid()}-abcdef", leases.LEASE_S)  # alive: this process
    assert not leases.claim_account(account.id, "w3")
    hold(account.id, f"cli-elsewhere.example-{dead_pid()}-abcdef", leases.LEASE_S)  # cannot tell: wait
    assert not leases.claim_account(account.id, "w3")
    hold(account.id, f"cli-{socket.gethostname()}-{dead_pid()}-abcdef", leases.LEASE_S)
    assert leases.claim_due_accounts("w4") == [account.id]


def test_the_heartbeat_keeps_a_short_lease_alive_until_the_poll_ends(mail_app, dovecot):
    account, _ = add_account(mail_app, dovecot, owner())
    account_id = account.id
    assert leases.claim_account(account_id, "w1", lease_s=0.6)
    fresh()
    with leases.Heartbeat(db.engine, account_id, "w1", lease_s=0.6, every_s=0.1):
        time.sleep(1.5)  # well past the first lease
        assert not leases.claim_account(account_id, "w2", lease_s=0.6)
        fresh()
    time.sleep(0.8)
    assert leases.claim_account(account_id, "w2", lease_s=0.6)


def test_the_cli_says_who_holds_a_lease_and_until_when(mail_app, dovecot):
    account, _ = add_account(mail_app, dovecot, owner())
    other = "worker-elsewhere.example-4242-ab12cd"
    hold(account.id, other, 30)
    until = db.session.get(MailAccount, account.id, populate_existing=True).lease_until
    result = mail_app.test_cli_runner().invoke(args=["mail", "fetch", "--all"])
    assert "polling it right now" not in result.output
    assert (f"not polled: its lease is held by {other} (a worker on elsewhere.example, process 4242) "
            f"until {until:%Y-%m-%d %H:%M:%S} UTC.") in result.output


def _cli(mail_app, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": mail_app.config["SQLALCHEMY_DATABASE_URI"],
           "SECRET_KEY": "x", "MAIL_SECRET_KEY": mail_app.config["MAIL_SECRET_KEY"],
           "MAIL_TLS_CA_FILE": mail_app.config["MAIL_TLS_CA_FILE"], "MAIL_ALLOW_LOCAL_SERVERS": "1",
           "INSTANCE_PATH": mail_app.instance_path, "MAIL_POLLER": "off"}
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "mail", "fetch", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(child: subprocess.Popen) -> str:
    output, _ = child.communicate(timeout=CLI_TIMEOUT_S)
    assert child.returncode == 0, output
    return output


def _stored_so_far(account_id: int) -> int:
    """The account's emails committed so far, read as a page reads them: on SQLite a deferred
    transaction that never queues for the write lock. (Watching with BEGIN IMMEDIATE, the watcher
    could lose the lock to the fetch's next batch again and again under load, and first look
    only after the whole poll, too late to kill it mid-poll.)"""
    reads_only(True)
    try:
        fresh()
        return count(Email, Email.account_id == account_id)
    finally:
        fresh()
        reads_only(False)


def test_a_killed_cli_fetch_is_taken_over_at_once_and_loses_doubles_and_deletes_nothing_unstored(
        mail_app, dovecot):
    account, login = add_account(mail_app, dovecot, owner(), leave=False)
    account_id = account.id
    sent = [message(size=8000) for _ in range(MESSAGES)]  # big enough that the kill lands mid-poll
    for raw in sent:
        dovecot.deliver(login, raw)
    lease_s = 10.0  # a long lease: the second fetch can only have it because its owner is dead
    fresh()
    child = _cli(mail_app, "--all", "--lease", str(lease_s), "--heartbeat", "0.5")
    try:
        while _stored_so_far(account_id) < 60:  # mid-poll: a batch or more committed
            assert child.poll() is None, child.stdout.read()
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(CLI_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    fresh()
    stored = count(Email, Email.account_id == account_id)
    row = db.session.get(MailAccount, account_id, populate_existing=True)
    dead_owner, dead_until = row.lease_owner, row.lease_until
    fresh()
    assert leases.LeaseOwner.parse(dead_owner).pid == child.pid and dead_until > utcnow()
    assert 0 < stored < MESSAGES and dovecot.count(login) == MESSAGES  # killed before QUIT: nothing deleted

    rows_before = [(r.state.value, r.email_id is not None) for r in ledger(account_id)]
    fresh()
    started = utcnow()
    output = _finish(_cli(mail_app, "--all"))
    assert started < dead_until  # the dead worker's lease had not run out: taken over because it is gone
    assert f"fetched {MESSAGES - stored:,}, linked 0, skipped 0, deleted {MESSAGES:,}, already here {stored:,}." \
        in output, (output, len(rows_before), set(rows_before))
    assert "not polled" not in output
    fresh()
    assert sorted(raw_contents(account_id)) == sorted(sent)  # each exactly once
    fresh()  # no transaction (on SQLite, the write lock) held while the next fetch runs
    assert dovecot.count(login) == 0

    time.sleep(max(0.0, (dead_until - utcnow()).total_seconds()))  # after one lease
    output = _finish(_cli(mail_app, "--all"))
    assert "fetched 0, linked 0, skipped 0, deleted 0." in output and "not polled" not in output, output
    fresh()
    assert count(Email, Email.account_id == account_id) == MESSAGES
    assert db.session.scalar(select(MailAccount.lease_owner).where(MailAccount.id == account_id)) == ""
