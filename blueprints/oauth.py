"""Sign in with Google, Microsoft or another provider: off to the provider, and back.

Starting keeps the `state`, the PKCE verifier and what the form said (never a secret) in the
Flask session; the callback checks the state, exchanges the code, tests the account or address
step by step with the new access token and only then keeps it (or, signing in again, its tokens).
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, render_template, request, session, url_for
from flask_login import current_user

from blueprints import mail_settings, send_as
from blueprints.mail_forms import DELETE, SignInAccountForm, SignInSendAsForm
from blueprints.mail_glue import get_account_or_404, get_identity_or_404, mail_context
from blueprints.web import is_htmx, mail_addon_required, redirect_to
from mail import oauth, signin
from mail.errors import MailError
from mail.inbound import accounts, worker
from mail.inbound.accounts import AccountInput
from mail.outbound import identities
from mail.outbound.identities import IdentityInput
from models import writing

bp = Blueprint("oauth", __name__, url_prefix="/mail/oauth")
PENDING = "oauth_sign_in"  # the session key of the sign-in under way
ACCOUNT_FIELDS = ("name", "email", "host", "port", "security", "username", "leave")
IDENTITY_FIELDS = ("from_name", "from_address", "host", "port", "security", "username")


def redirect_uri() -> str:
    """The address to register with each provider (Setup > Sign-in providers shows it)."""
    return url_for("oauth.callback", _external=True)


def _provider_or_404():
    row = signin.get_provider(request.form.get("provider_id", type=int) or 0)
    return row if signin.is_configured(row) else abort(404)


def _go(row, purpose: str, login_hint: str, target_id: int = 0, fields: dict | None = None):
    """Remember the sign-in in the session and send the browser to the provider."""
    started = oauth.start_sign_in(signin.client(mail_context(), row, redirect_uri()), login_hint=login_hint)
    session[PENDING] = {"state": started.state, "verifier": started.code_verifier, "provider_id": row.id,
                        "purpose": purpose, "target_id": target_id, "user_id": current_user.id,
                        "fields": fields or {}}
    if is_htmx():  # a full navigation; a redirect after a form post would meet CSP form-action
        return redirect_to(started.url)
    return render_template("mail_settings/sign_in_continue.html", url=started.url, provider=row.name)


def _start(form, show_form, purpose: str, hint: str, fields: tuple, refuse=lambda form: False):
    """"Sign in with ..." pressed on a form: with the form valid (else the form again, 422) and not
    refused, off to the provider with what it says so far; `hint` names the field with the address."""
    row = _provider_or_404()
    if not form.validate() or refuse(form):
        return show_form(form, status=422)
    return _go(row, purpose, form[hint].data, fields={f: form[f].data for f in fields})


def _again(server, purpose: str, login_hint: str):
    """Sign in again with the provider that refused the saved sign-in of `server`."""
    row = server.sign_in_provider if signin.is_configured(server.sign_in_provider) else abort(404)
    return _go(row, purpose, login_hint, target_id=server.id)


@bp.route("/accounts/start", methods=["POST"])
@mail_addon_required
def account_sign_in():
    """Add POP3 Account: "Sign in with ..." with what the form says so far."""
    return _start(SignInAccountForm(), mail_settings.account_form, "account", "email", ACCOUNT_FIELDS,
                  refuse=mail_settings.refuse_duplicate)


@bp.route("/send-as/start", methods=["POST"])
@mail_addon_required
def identity_sign_in():
    """Add Send Mail As: "Sign in with ..." with what the form says so far."""
    return _start(SignInSendAsForm(), send_as.identity_form, "send_as", "from_address", IDENTITY_FIELDS)


@bp.route("/accounts/<int:account_id>/again", methods=["POST"])
@mail_addon_required
def account_sign_in_again(account_id: int):
    """Sign in again: the provider refused the saved sign-in of this account."""
    account = get_account_or_404(account_id)
    return _again(account, "account_again", account.email)


@bp.route("/send-as/<int:identity_id>/again", methods=["POST"])
@mail_addon_required
def identity_sign_in_again(identity_id: int):
    """Sign in again for a Send Mail As address."""
    identity = get_identity_or_404(identity_id)
    return _again(identity, "send_as_again", identity.from_address)


@bp.route("/callback")
@mail_addon_required
def callback():
    """The provider sends the user back here with a code (or an error) and the state."""
    pending = session.pop(PENDING, None)
    if not pending or pending.get("user_id") != current_user.id:
        flash("This sign-in has expired or did not start here. Start it again.", "error")
        return redirect_to(url_for("mail_settings.account_list"))
    ctx = mail_context()
    row = signin.get_provider(pending["provider_id"])
    started = oauth.SignInStart("", pending["state"], pending["verifier"])
    try:
        tokens = oauth.finish_sign_in(signin.client(ctx, row, redirect_uri()), started, request.args,
                                      signin.network(ctx))
    except MailError as e:
        return _failed(pending, str(e))
    with writing():  # a GET that saves what the sign-in gave (the provider redirects here)
        return FINISH[pending["purpose"]](pending, row, tokens)


def _failed(pending: dict, sentence: str, report=None):
    """Back to the form the sign-in started from, saying what went wrong."""
    fields = pending["fields"]
    if pending["purpose"] == "account":
        form = SignInAccountForm(formdata=None, data=fields)
        return mail_settings.account_form(form, report, status=422, sign_in_error=None if report else sentence)
    if pending["purpose"] == "send_as":
        form = SignInSendAsForm(formdata=None, data=fields)
        return send_as.identity_form(form, report, status=422, sign_in_error=None if report else sentence)
    flash(sentence if report is None else f"The sign-in worked, but the server test did not: {report.error}", "error")
    back = "mail_settings.account_list" if pending["purpose"] == "account_again" else "send_as.identity_list"
    return redirect_to(url_for(back))


def _new_account(pending: dict, row, tokens: oauth.Tokens):
    f = pending["fields"]
    data = AccountInput(name=f["name"], email=f["email"], host=f["host"], port=f["port"], security=f["security"],
                        username=f["username"], password="", leave_on_server=f["leave"] != DELETE)
    account, report = accounts.create_signed_in(mail_context(), current_user, data, row.id, tokens)
    if account is None:
        return _failed(pending, "", report)
    worker.wake()  # its first poll was asked for with it
    flash(f"Created the account {data.name}. Signed in as {data.username} with {row.name}: {report.summary}.",
          "success")
    return redirect_to(url_for("mail_settings.account_list"))


def _signed_in_again(pending: dict, report, done: str, endpoint: str):
    """After signing in again: the list with `done` said, or what went wrong."""
    if not report.ok:
        return _failed(pending, "", report)
    flash(done, "success")
    return redirect_to(url_for(endpoint))


def _account_again(pending: dict, row, tokens: oauth.Tokens):
    account = get_account_or_404(pending["target_id"])
    done = (f"Signed in again: {account.name} is fetched again from now on. Mail fetched before stays, "
            "and none comes twice.")  # said before the test: its commit expires the account
    report = accounts.sign_in_again(mail_context(), account, row.id, tokens)
    worker.wake()
    return _signed_in_again(pending, report, done, "mail_settings.account_list")


def _new_identity(pending: dict, row, tokens: oauth.Tokens):
    f = pending["fields"]
    data = IdentityInput(f["from_name"], f["from_address"], f["host"], f["port"], f["security"],
                         f["username"] or f["from_address"], "")
    identity, report = identities.create_signed_in(mail_context(), current_user, data, row.id, tokens)
    if identity is None:
        return _failed(pending, "", report)
    send_as.start_proof(identity)
    return redirect_to(url_for("send_as.identity_verify", identity_id=identity.id))


def _identity_again(pending: dict, row, tokens: oauth.Tokens):
    identity = get_identity_or_404(pending["target_id"])
    done = f"Signed in again: you can send from {identity.from_address}."
    report = identities.sign_in_again(mail_context(), identity, row.id, tokens)
    return _signed_in_again(pending, report, done, "send_as.identity_list")


FINISH = {"account": _new_account, "account_again": _account_again, "send_as": _new_identity,
          "send_as_again": _identity_again}
