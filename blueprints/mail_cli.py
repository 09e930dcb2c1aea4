"""Command line for mail sync: `flask --app app mail fetch`, `flask --app app mail worker`."""
from __future__ import annotations

import signal
import threading

import click
from flask import Blueprint, current_app

from mail.inbound import leases, worker
from mail.org import mail_addon_enabled
from mail.inbound.health import PollResult
from models import AccountState, MailAccount, db

bp = Blueprint("mail_cli", __name__, cli_group="mail")
bp.cli.help = "Fetch mail from the POP3 accounts."


@bp.cli.command("fetch")
@click.option("--account", "account_id", type=int, help="Poll only this account (its id).")
@click.option("--all", "poll_all", is_flag=True, help="Poll every account once, due or not.")
@click.option("--lease", "lease_s", type=click.FloatRange(min=0.1), default=leases.LEASE_S, show_default=True,
              help="Seconds a lease lasts unless its heartbeat renews it.")
@click.option("--heartbeat", "heartbeat_s", type=click.FloatRange(min=0.05), default=leases.HEARTBEAT_S,
              show_default=True, help="Seconds between renewals of the lease while polling.")
def fetch(account_id: int | None, poll_all: bool, lease_s: float, heartbeat_s: float) -> None:
    """Poll accounts once and say what each fetched; exit code 1 if any failed."""
    ids = _accounts_to_poll(account_id, poll_all)
    ctx = current_app.extensions["mail"]
    worker_id = leases.new_worker_id("cli")
    failed = False
    for one in ids:
        account = db.session.get(MailAccount, one)
        name = _name(account)
        if poll_all and account.state is AccountState.AUTH_ERROR:
            click.echo(f"{name}: not polled: the server refused its password; change it first.")
            continue
        if not leases.claim_account(one, worker_id, lease_s):
            click.echo(f"{name}: not polled: {_lease_held(one)}.")
            continue
        result = worker.poll_claimed(ctx, one, worker_id, lease_s=lease_s, heartbeat_s=heartbeat_s)
        if result is not None:
            click.echo(f"{name}: {describe(result)}")
            failed = failed or not result.ok
    if failed:
        raise SystemExit(1)


@bp.cli.command("worker")
@click.option("--interval", type=click.FloatRange(min=0.1), default=worker.TICK_S, show_default=True,
              help="Seconds between looks for accounts that are due.")
def run_worker(interval: float) -> None:
    """Poll every account when it is due, until stopped (Ctrl+C or SIGTERM)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        click.echo("Stopping after the current batch...")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    worker_id = leases.new_worker_id()
    click.echo(f"Mail worker {worker_id}: polling due accounts every {interval:g} s.")
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def report(result: PollResult) -> None:
        click.echo(f"Account {result.account_id}: {describe(result)}")

    worker.run_forever(app.app_context, app.extensions["mail"], stop, worker_id=worker_id, tick_s=interval, on_result=report)
    click.echo("Mail worker stopped.")


def _accounts_to_poll(account_id: int | None, poll_all: bool) -> list[int]:
    """The account ids `mail fetch` was asked for; a ClickException says why there are none."""
    if (account_id is None) == (not poll_all):
        raise click.UsageError("Give either --account ID or --all.")
    if not mail_addon_enabled():
        raise click.ClickException("The Mail Add-on is not enabled: nothing fetched.")
    if account_id is not None:
        if db.session.get(MailAccount, account_id) is None:
            raise click.ClickException(f"There is no mail account {account_id}.")
        return [account_id]
    ids = leases.all_account_ids()
    if not ids:
        click.echo("There are no mail accounts.")
    return ids


def describe(result: PollResult) -> str:
    """One line: 'fetched 12, linked 4, skipped 1, deleted 0.' then any errors as sentences."""
    counts = (f"fetched {result.fetched:,}, linked {result.linked:,}, skipped {result.skipped:,}, "
              f"deleted {result.deleted:,}")
    if result.recognised:
        counts += f", already here {result.recognised:,}"
    return counts + "." + "".join(f" {error}" for error in result.errors)


def _lease_held(account_id: int) -> str:
    account = db.session.get(MailAccount, account_id, populate_existing=True)
    held = leases.lease_sentence(account) if account is not None else ""
    return f"its lease is {held}" if held else "another worker held its lease a moment ago"


def _name(account: MailAccount) -> str:
    return f"Account {account.id} ({account.name} <{account.email}>)"
