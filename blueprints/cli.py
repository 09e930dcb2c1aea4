"""Command line: `flask --app app users create ...`, `flask --app app demo`."""
from __future__ import annotations

import os

import click
from flask.cli import AppGroup
from flask import Blueprint, current_app

from crm import demo, users
from mail import demo as demo_mail

bp = Blueprint("cli", __name__, cli_group=None)

users_cli = AppGroup("users", help="Manage users.")
bp.cli.add_command(users_cli)


@users_cli.command("create")
@click.argument("email")
@click.option("--name", required=True, help="The user's name.")
@click.option("--password", required=True, help="At least 8 characters.")
@click.option("--admin", is_flag=True, help="Make the user an Administrator.")
def users_create(email: str, name: str, password: str, admin: bool) -> None:
    """Add a user."""
    try:
        user = users.create_user(email, name, password, admin=admin)
    except ValueError as e:
        raise click.ClickException(str(e))
    click.echo(f"Created {user.role.label} {user.name} <{user.email}>.")


def load_demo() -> list | None:
    """The demo users, records and mail in an empty database; None if it has users already.

    The demo's Send Mail As identities send to the local mail sink on DEMO_MAIL_SINK_PORT
    (scripts/run.sh starts it there).
    """
    created = demo.load_demo_records()
    if created is not None:
        port = int(os.environ.get("DEMO_MAIL_SINK_PORT") or demo_mail.SINK_PORT)
        demo_mail.load_demo_mail(created, current_app.extensions["mail"].box.encrypt, (demo_mail.SINK_HOST, port))
    return created


@bp.cli.command("demo")
def demo_load() -> None:
    """Load the demo users, Leads and Contacts into an empty database; refuses any other."""
    loaded = load_demo()
    if loaded is None:  # a real organisation's data: never add users with a published password
        raise click.ClickException("The database already has users: demo data not loaded.")
    click.echo(f"Loaded the demo data: {len(loaded)} users, {len(demo.LEADS)} Leads, {len(demo.CONTACTS)} Contacts.")
    click.echo("Demo sign-ins (password for all: %s):" % demo.DEMO_PASSWORD)
    for email, name, admin in demo.DEMO_USERS:
        click.echo(f"  {email:36} {name} ({'Administrator, CEO' if admin else 'Sales rep'})")
