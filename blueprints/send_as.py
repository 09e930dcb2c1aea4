"""Settings > Mail > Send Mail As: outgoing identities, tested, then proven by a code mailed through the
organisation's relay or, without one, approved by an administrator."""
from __future__ import annotations

from operator import attrgetter

from flask import Blueprint, flash, request, url_for
from flask_login import current_user

from blueprints.forms import ConfirmForm
from blueprints.mail_forms import SMTP_PORTS, SendAsForm, VerifyForm, mark_fault
from blueprints.mail_glue import PasswordPage, get_identity_or_404, list_changed, mail_context, password_change
from blueprints.mail_settings import fill_suggestions
from mail import signin
from blueprints.web import is_htmx, mail_addon_required, redirect_to, render
from mail.outbound import identities, relay
from mail.errors import MailError
from mail.outbound.identities import IdentityInput

bp = Blueprint("send_as", __name__, url_prefix="/settings/mail/send-as")
FORM = "mail_settings/send_as_new.html"
PASSWORD_PAGE = PasswordPage(heading="Change the outgoing password", list_endpoint="send_as.identity_list",
                             done="The outgoing password of {name} has been changed.",
                             name=attrgetter("from_address"), change=identities.change_password)


@bp.route("/")
@mail_addon_required
def identity_list():
    """The user's outgoing identities and whether each is verified."""
    return render("mail_settings/send_as.html", "identity_list", identities=identities.user_identities(current_user),
                  confirm=ConfirmForm(), relay_on=relay.relay_configured())


def identity_form(form, report=None, status=200, sign_in_error=None, block="identity_form"):
    """The Add Send Mail As form (or, for a look-up while typing, only its provider region)."""
    mark_fault(form, report)
    address = form.from_address.data or ""
    incoming = identities.incoming_account_for(current_user, address)
    server = identities.suggested_server(address)
    suggested = (server.smtp_host, server.smtp_port, server.smtp_security) if server and not server.blocked else None
    return render(FORM, block, status=status, form=form, report=report, incoming=incoming,
                  relay_on=relay.relay_configured(), offers=signin.offers(address, smtp=True), ports=SMTP_PORTS,
                  built_in=signin.built_in_for(address), sign_in_error=sign_in_error,
                  fill=fill_suggestions(server, address, suggested))


def _input(form: SendAsForm) -> IdentityInput | None:
    """The form's identity; with "use the incoming account", that account's username and password.

    None (and an error on the field) when there is no incoming account of that address.
    """
    data = IdentityInput(from_name=form.from_name.data, from_address=form.from_address.data, host=form.host.data,
                         port=form.port.data, security=form.security.data, username=form.username.data or "",
                         password=form.password.data or "")
    if form.use_incoming.data:
        credentials = identities.incoming_credentials(mail_context(), current_user, form.from_address.data)
        if credentials is None:
            form.use_incoming.errors.append("You have no POP3 account with this address.")
            return None
        data.username, data.password = credentials
    return data


def start_proof(identity) -> None:
    """Mail a code through the relay, or without one put the address before an administrator; say which."""
    address = identity.from_address  # read now: sending ends the transaction
    try:
        sent = identities.start_proof(mail_context(), identity)
    except MailError as e:
        flash(f"The verification code could not be sent: {e}", "error")
    else:
        flash(f"We sent a code to {address}. Enter it to start sending from this address." if sent else
              f"{address} is waiting for an administrator's approval: {relay.NO_RELAY_MESSAGE}",
              "success")


@bp.route("/new", methods=["GET", "POST"])
@mail_addon_required
def identity_new():
    """Add an identity: tested first, then kept unverified until its address is proven."""
    if request.method == "GET":
        return identity_form(SendAsForm(data=identities.new_identity_defaults(current_user)))
    form = SendAsForm()
    if not form.validate() or (data := _input(form)) is None:
        return identity_form(form, status=422)
    identity, report = identities.create(mail_context(), current_user, data)
    if identity is None:
        return identity_form(form, report, status=422)
    start_proof(identity)
    return redirect_to(url_for("send_as.identity_verify", identity_id=identity.id))


@bp.route("/form", methods=["POST"])
@mail_addon_required
def identity_form_refresh():
    """The form again with what it fills in by itself (provider settings, usual port)."""
    form = SendAsForm()
    if is_htmx() and request.form.get("region") == "provider":  # a look-up while typing (issue 13)
        return identity_form(form, block="provider_region")
    form.fill_defaults(identities.suggested_server(form.from_address.data or ""))
    return identity_form(form)


@bp.route("/test", methods=["POST"])
@mail_addon_required
def identity_test():
    """Test: connect, EHLO, secure, sign in; nothing is saved."""
    form = SendAsForm()
    if not form.validate() or (data := _input(form)) is None:
        return identity_form(form, status=422)
    return identity_form(form, identities.test(mail_context(), data))


@bp.route("/<int:identity_id>/verify", methods=["GET", "POST"])
@mail_addon_required
def identity_verify(identity_id: int):
    """Type back the code mailed to the address, proving it is the user's."""
    identity = get_identity_or_404(identity_id)
    form = VerifyForm()
    if form.validate_on_submit():
        try:
            identities.verify(identity, form.code.data)
        except identities.VerifyError as e:
            form.code.errors.append(str(e))
        else:
            flash(f"{identity.from_address} is verified: you can send from it.", "success")
            return redirect_to(url_for("send_as.identity_list"))
    status = 422 if form.is_submitted() else 200
    return render("mail_settings/send_as_verify.html", "verify_form", status=status, form=form, identity=identity,
                  confirm=ConfirmForm(), relay_on=relay.relay_configured())


@bp.route("/<int:identity_id>/code", methods=["POST"])
@mail_addon_required
def identity_code_send(identity_id: int):
    """Send a new code (through the relay), or without a relay ask an administrator to approve."""
    identity = get_identity_or_404(identity_id)
    start_proof(identity)
    return redirect_to(url_for("send_as.identity_verify", identity_id=identity.id))


@bp.route("/<int:identity_id>/password", methods=["GET", "POST"])
@mail_addon_required
def identity_password(identity_id: int):
    """Change the outgoing password: tested before it is kept."""
    return password_change(get_identity_or_404(identity_id), PASSWORD_PAGE)


@bp.route("/<int:identity_id>/delete", methods=["POST"])
@mail_addon_required
def identity_delete(identity_id: int):
    """Delete an identity (asked first)."""
    identity = get_identity_or_404(identity_id)
    address = identity.from_address
    identities.delete(identity)
    return list_changed(f"Deleted the Send Mail As address {address}.", identity_list, "send_as.identity_list")
