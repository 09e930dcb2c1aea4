"""Settings > Mail: Mail Accounts (POP3) and Send Mail As (SMTP), each user's own."""
from __future__ import annotations

from operator import attrgetter

from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_login import current_user

from blueprints.forms import ConfirmForm
from blueprints.mail_forms import DELETE, POP3_PORTS, HostedAccountForm, Pop3AccountForm, mark_fault
from blueprints.mail_glue import PasswordPage, get_account_or_404, list_changed, mail_context, password_change
from blueprints.web import is_htmx, mail_addon_required, redirect_to, render
from mail.org import org_settings
from mail.inbound import accounts, worker
from mail import providers, signin
from mail.inbound.accounts import AccountInput

bp = Blueprint("mail_settings", __name__, url_prefix="/settings/mail")
ACCOUNT_FORM = "mail_settings/account_new.html"
PASSWORD_PAGE = PasswordPage(heading="Change the incoming password", done="The password of {name} has been changed.",
                             list_endpoint="mail_settings.account_list", name=attrgetter("name"),
                             change=accounts.change_password)


def hosted_offer():
    """The organisation's own mailbox for this user, if the hosted domain covers their address."""
    org = org_settings()
    domain = org.hosted_domain.lower()
    if not domain or not current_user.email.endswith("@" + domain):
        return None
    if any(a.email == current_user.email for a in accounts.user_accounts(current_user)):
        return None
    return org


@bp.route("/accounts")
@mail_addon_required
def account_list():
    """Settings > Mail > Mail Accounts: the user's POP3 accounts and their state."""
    return render("mail_settings/accounts.html", "account_list", accounts=accounts.user_accounts(current_user),
                  confirm=ConfirmForm())


def _input(form: Pop3AccountForm) -> AccountInput:
    return AccountInput(name=form.name.data, email=form.email.data, host=form.host.data, port=form.port.data,
                        security=form.security.data, username=form.username.data, password=form.password.data,
                        leave_on_server=form.leave.data != DELETE)


def account_form(form, report=None, status=200, sign_in_error=None, block="account_form", hosted_form=None,
                 with_provider=True):
    """The Add POP3 Account form (or, for a look-up while typing, only its provider region)."""
    mark_fault(form, report)
    address = form.email.data or ""
    provider = providers.lookup(address) if with_provider else None
    return render(ACCOUNT_FORM, block, status=status, form=form, report=report, provider=provider, ports=POP3_PORTS,
                  hosted=hosted_offer(), hosted_form=hosted_form or HostedAccountForm(prefix="hosted"),
                  offers=signin.offers(address), built_in=signin.built_in_for(address), sign_in_error=sign_in_error,
                  fill=fill_suggestions(provider, address, (provider.pop_host, provider.pop_port, provider.pop_security)
                                        if provider and not provider.blocked else None))


def fill_suggestions(provider, address: str, server: tuple | None) -> dict:
    """What the page may fill in by itself, in the browser, into fields still empty (issue 13):
    the provider's server (with its port and security, only while the server field is empty)
    and the username."""
    suggestions: dict = {"empty": {"username": address} if address else {}}
    if server:
        suggestions["server"] = {"host": server[0], "port": str(server[1]), "security": server[2]}
    return suggestions


def refuse_duplicate(form) -> bool:
    """True (and the error beside Username) when the user already has this username on this server."""
    if not accounts.duplicate_exists(current_user, form.host.data, form.username.data):
        return False
    form.username.errors.append("You already have an account with this username on this server.")
    return True


@bp.route("/accounts/new", methods=["GET", "POST"])
@mail_addon_required
def account_new():
    """Add POP3 Account; Create Account tests the settings first and saves only if sign-in worked."""
    form = Pop3AccountForm()
    if request.method == "GET":
        return account_form(form)
    if not form.validate():
        return account_form(form, status=422)
    if refuse_duplicate(form):
        return account_form(form, status=422)
    if (provider := providers.lookup(form.email.data)) and provider.blocked:
        form.email.errors.append(provider.note)
        return account_form(form, status=422)
    account, report = accounts.create(mail_context(), current_user, _input(form))
    if account is None:
        return account_form(form, report, status=422)
    worker.wake()  # its first poll was asked for with it
    flash(f"Created the account {account.name}." + (f" {report.warning}" if report.warning else ""), "success")
    return redirect_to(url_for("mail_settings.account_list"))


@bp.route("/accounts/form", methods=["POST"])
@mail_addon_required
def account_form_refresh():
    """The form again with what it fills by itself (provider settings, usual port, Gmail's note)."""
    form = Pop3AccountForm()
    apply_gmail = request.form.get("apply") == "gmail"
    if is_htmx() and not apply_gmail:  # a look-up while typing: only the region it changes (issue 13)
        return account_form(form, block="provider_region")
    form.fill_defaults(providers.lookup(form.email.data or ""), apply_gmail=apply_gmail)
    return account_form(form)


@bp.route("/accounts/test", methods=["POST"])
@mail_addon_required
def account_test():
    """Test Account: a real POP3 session, reported step by step in the form; nothing is saved."""
    form = Pop3AccountForm()
    if not form.validate():
        return account_form(form, status=422)
    return account_form(form, accounts.test(mail_context(), _input(form)))


@bp.route("/accounts/hosted", methods=["POST"])
@mail_addon_required
def account_hosted():
    """The organisation's own mailbox: the user types only the password."""
    org = hosted_offer() or abort(404)
    hosted_form = HostedAccountForm(prefix="hosted")
    form = Pop3AccountForm(formdata=None, data={
        "name": org.hosted_domain, "email": current_user.email, "host": org.hosted_pop_host,
        "port": org.hosted_pop_port, "security": org.hosted_pop_security, "username": current_user.email})
    if not hosted_form.validate():
        return account_form(form, status=422, hosted_form=hosted_form, with_provider=False)
    data = _input(form)
    data.password = hosted_form.password.data
    account, report = accounts.create(mail_context(), current_user, data)
    if account is None:
        hosted_form.password.errors.append(str(report.error))
        return account_form(form, status=422, hosted_form=hosted_form, with_provider=False)
    worker.wake()
    flash(f"Created the account {account.name}.", "success")
    return redirect_to(url_for("mail_settings.account_list"))


@bp.route("/accounts/<int:account_id>/password", methods=["GET", "POST"])
@mail_addon_required
def account_password(account_id: int):
    """Change the incoming password: the new one is tested before it replaces the old one."""
    return password_change(get_account_or_404(account_id), PASSWORD_PAGE)


@bp.route("/accounts/<int:account_id>/default", methods=["POST"])
@mail_addon_required
def account_default(account_id: int):
    """Set as default."""
    account = get_account_or_404(account_id)
    accounts.set_default(account)
    return list_changed(f"{account.name} is now your default account.", account_list, "mail_settings.account_list")


@bp.route("/accounts/<int:account_id>/delete", methods=["POST"])
@mail_addon_required
def account_delete(account_id: int):
    """Delete an account (asked first); mail already fetched from it stays."""
    account = get_account_or_404(account_id)
    name = account.name
    accounts.delete(account)
    return list_changed(f"Deleted the account {name}. Mail already fetched from it stays.", account_list,
                        "mail_settings.account_list")


@bp.route("/accounts/<int:account_id>/fetch", methods=["POST"])
@mail_addon_required
def account_fetch(account_id: int):
    """Fetch now: a worker (or this process's poller) polls the account at once."""
    account = get_account_or_404(account_id)
    worker.request_fetch_now(account.id)
    if is_htmx():
        return account_health(account.id)
    flash(f"Fetching {account.name} now.", "success")
    return redirect_to(url_for("mail_settings.account_list"))


@bp.route("/accounts/<int:account_id>/health")
@mail_addon_required
def account_health(account_id: int):
    """One account's health: live progress while it is polled ("Fetched 340 of 1,200")."""
    account = get_account_or_404(account_id)
    return render_template("mail_settings/_account_health.html", a=account)

