"""Setup (administrators): Users, and Apps & Add-ons > Mail Add-on (settings, relay, Send Mail As requests)."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user

from blueprints.forms import ConfirmForm, UserForm
from blueprints.mail_forms import ApprovalForm, ClientForm, GenericProviderForm, MailAddonAdminForm, RelayForm
from blueprints.oauth import redirect_uri
from blueprints.web import admin_required, is_htmx, redirect_to, render
from crm import users
from mail import signin
from mail.org import MAIL_SETTINGS_FIELDS, mail_addon_enabled, org_settings, save_mail_settings, set_mail_addon_enabled
from mail.outbound import identities, relay
from mail.outbound.relay import RelayInput

bp = Blueprint("setup", __name__, url_prefix="/setup")
MAIL_ADDON = "setup/mail_addon.html"
SIGN_IN = "setup/sign_in_providers.html"


@bp.route("/")
@admin_required
def index():
    """Setup's start page."""
    return render("setup/index.html", addon_on=mail_addon_enabled(), requests=len(identities.pending_approvals()))


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def user_list():
    """All users, and the form to add one."""
    form = UserForm()
    if form.validate_on_submit():
        user = users.create_user(form.email.data, form.name.data, form.password.data, admin=form.admin.data)
        flash(f"Added {user.name} ({user.email}).", "success")
        return redirect_to(url_for("setup.user_list"))
    status = 422 if form.is_submitted() else 200
    return render("setup/users.html", "user_form", status=status, form=form,
                  users=users.all_users(), confirm=ConfirmForm())


@bp.route("/users/<int:user_id>/<any(deactivate,activate):action>", methods=["POST"])
@admin_required
def user_active_update(user_id: int, action: str):
    """Deactivate a user (they cannot sign in; their data stays), or activate them again."""
    user = users.get_user(user_id) or abort(404)
    if action == "deactivate" and request.form.get("confirmed") != "yes":  # ask first, saying what stops
        return render("setup/users.html", form=UserForm(formdata=None), users=users.all_users(), confirm=ConfirmForm(),
                      confirm_user=user)
    try:
        users.set_active(user, action == "activate", by=current_user)
    except ValueError as e:
        flash(str(e), "error")
    else:
        flash(f"{user.name} is {'active' if user.active else 'deactivated'}.", "success")
    return redirect(url_for("setup.user_list"), 303)


def _mail_addon_page(block: str | None = None, status: int = 200, **forms):
    """The Mail Add-on page; `forms` replaces the blank or stored form of the same name (a failed one)."""
    context = {"form": ConfirmForm(), "settings_form": MailAddonAdminForm(formdata=None, obj=org_settings()),
               "relay_form": RelayForm(formdata=None, obj=relay.current()), "report": None, "relay_on": relay.relay_configured(),
               "relay_password_kept": relay.has_password(), "requests": identities.pending_approvals(),
               "approval_form": ApprovalForm(), "addon_on": mail_addon_enabled(), "confirm_disable": False, **forms}
    return render(MAIL_ADDON, block, status=status, **context)


@bp.route("/addons/mail", methods=["GET", "POST"])
@admin_required
def mail_addon():
    """Apps & Add-ons > Mail Add-on: enable or disable it for the whole organisation."""
    form = ConfirmForm()
    if form.validate_on_submit():
        enable = not mail_addon_enabled()
        if not enable and request.form.get("confirmed") != "yes":  # ask first, saying what stops
            return _mail_addon_page(confirm_disable=True)
        set_mail_addon_enabled(enable)
        flash("The Mail Add-on is enabled: each user can now add a mail account and choose their sharing."
              if enable else "The Mail Add-on is disabled.", "success")
        return redirect(url_for("setup.mail_addon"), 303)
    return _mail_addon_page()


@bp.route("/addons/mail/settings", methods=["POST"])
@admin_required
def mail_addon_settings():
    """The outbound guard's allowed servers, the organisation's hosted mail domain, the sending limits."""
    form = MailAddonAdminForm()
    if not form.validate():
        return _mail_addon_page("settings_form", status=422, settings_form=form)
    save_mail_settings({name: form[name].data for name in MAIL_SETTINGS_FIELDS})
    flash("Mail Add-on settings saved.", "success")
    return redirect_to(url_for("setup.mail_addon"))


def _relay_input(form: RelayForm) -> RelayInput:
    return RelayInput(host=form.host.data, port=form.port.data, security=form.security.data,
                      username=form.username.data, password=form.password.data or "",
                      from_address=form.from_address.data)


@bp.route("/addons/mail/relay", methods=["POST"])
@admin_required
def relay_save():
    """Save the outgoing relay: tested first, kept (its password encrypted) only if it works."""
    form = RelayForm()
    if not form.validate():
        return _mail_addon_page("relay_form", status=422, relay_form=form)
    report = relay.save(current_app.extensions["mail"], _relay_input(form))
    if not report.ok:
        return _mail_addon_page("relay_form", status=422, relay_form=form, report=report)
    flash("The outgoing relay is saved: Send Mail As codes now go through it.", "success")
    return redirect_to(url_for("setup.mail_addon"))


@bp.route("/addons/mail/relay/test", methods=["POST"])
@admin_required
def relay_test():
    """Test the relay inline: connect, EHLO, secure, sign in; nothing is saved."""
    form = RelayForm()
    if not form.validate():
        return _mail_addon_page("relay_form", status=422, relay_form=form)
    report = relay.test(current_app.extensions["mail"], _relay_input(form))
    return _mail_addon_page("relay_form", relay_form=form, report=report)


@bp.route("/addons/mail/relay/delete", methods=["POST"])
@admin_required
def relay_delete():
    """Remove the relay (asked first): new Send Mail As addresses then wait for an administrator."""
    relay.remove()  # CSRFProtect has checked the form's token
    flash("The outgoing relay is removed. New Send Mail As addresses wait for your approval.", "success")
    return redirect_to(url_for("setup.mail_addon"))


@bp.route("/addons/mail/send-as/<int:identity_id>", methods=["POST"])
@admin_required
def send_as_decide(identity_id: int):
    """Approve or deny a Send Mail As address waiting for an administrator."""
    identity = identities.get_pending(identity_id) or abort(404)
    form = ApprovalForm()
    if not form.validate():
        abort(400, "Approve or deny the address.")
    identities.decide(identity, form.decision.data == "approve", by=current_user)
    verb = "approved: they can send from it" if identity.verified else "denied"
    flash(f"{identity.user.name}'s address {identity.from_address} is {verb}.", "success")
    if is_htmx():
        return _mail_addon_page("send_as_requests")
    return redirect_to(url_for("setup.mail_addon"))


def _sign_in_page(status: int = 200, client_forms: dict | None = None, generic_form=None):
    """Setup > Mail Add-on > Sign-in providers; a failed form replaces its blank one."""
    client_forms = client_forms or {}
    built_in = [(p, row, client_forms.get(p.key) or ClientForm(prefix=p.key)) for p, row in signin.built_in_rows()]
    return render(SIGN_IN, status=status, built_in=built_in, generic=signin.generic_rows(),
                  generic_form=generic_form or GenericProviderForm(), redirect_uri=redirect_uri(),
                  confirm=ConfirmForm(), is_configured=signin.is_configured)


@bp.route("/addons/mail/sign-in")
@admin_required
def sign_in_providers():
    """Sign-in providers: Google, Microsoft and any OAuth 2.0 provider, with the redirect URL to register."""
    return _sign_in_page()


@bp.route("/addons/mail/sign-in/<any(google,microsoft):key>", methods=["POST"])
@admin_required
def sign_in_client_save(key: str):
    """Save this CRM's client ID and secret at Google or Microsoft (encrypted; blank keeps the saved one)."""
    form = ClientForm(prefix=key)
    configured = any(signin.is_configured(row) for p, row in signin.built_in_rows() if p.key == key)
    valid = form.validate()
    if valid and not configured and not (form.client_id.data and form.client_secret.data):
        form.client_secret.errors.append("Enter both the client ID and the client secret.")
        valid = False
    if not valid:
        return _sign_in_page(422, client_forms={key: form})
    row = signin.save_built_in(current_app.extensions["mail"], key, form.client_id.data, form.client_secret.data)
    flash(f"Sign in with {row.name} is set up.", "success")
    return redirect_to(url_for("setup.sign_in_providers"))


@bp.route("/addons/mail/sign-in/new", methods=["POST"])
@admin_required
def sign_in_provider_add():
    """Add an OAuth 2.0 provider by its endpoints and scopes."""
    form = GenericProviderForm()
    if not form.validate():
        return _sign_in_page(422, generic_form=form)
    row = signin.add_generic(current_app.extensions["mail"], signin.GenericInput(
        name=form.name.data, authorization_url=form.authorization_url.data, token_url=form.token_url.data,
        scopes=form.scopes.data, client_id=form.client_id.data, client_secret=form.client_secret.data,
        revocation_url=form.revocation_url.data, domains=form.domains.data, covers_smtp=form.covers_smtp.data))
    flash(f"Sign in with {row.name} is set up.", "success")
    return redirect_to(url_for("setup.sign_in_providers"))


@bp.route("/addons/mail/sign-in/<int:provider_id>/delete", methods=["POST"])
@admin_required
def sign_in_provider_delete(provider_id: int):
    """Remove a provider (asked first): addresses signed in with it stop until signed in some other way."""
    row = signin.get_provider(provider_id) or abort(404)
    name = row.name
    signin.remove(row)
    flash(f"Removed the sign-in provider {name}.", "success")
    return redirect_to(url_for("setup.sign_in_providers"))
