"""Setup (administrators): Users, and Apps & Add-ons > Mail Add-on."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user

from blueprints.forms import ConfirmForm, UserForm
from blueprints.web import admin_required, redirect_to, render
from crm import users
from blueprints.mail_forms import MailAddonAdminForm
from mail.org import mail_addon_enabled, org_settings, org_settings_for_update, set_mail_addon_enabled
from mail.guard import validate_allowed_entry
from models import User, db

bp = Blueprint("setup", __name__, url_prefix="/setup")


@bp.route("/")
@admin_required
def index():
    """Setup's start page."""
    return render("setup/index.html", addon_on=mail_addon_enabled())


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
    user = db.session.get(User, user_id) or abort(404)
    try:
        users.set_active(user, action == "activate", by=current_user)
    except ValueError as e:
        flash(str(e), "error")
    else:
        flash(f"{user.name} is {'active' if user.active else 'deactivated'}.", "success")
    return redirect(url_for("setup.user_list"), 303)


@bp.route("/addons/mail", methods=["GET", "POST"])
@admin_required
def mail_addon():
    """Apps & Add-ons > Mail Add-on: enable or disable it for the whole organisation."""
    form = ConfirmForm()
    if form.validate_on_submit():
        enable = not mail_addon_enabled()
        set_mail_addon_enabled(enable)
        flash("The Mail Add-on is enabled." if enable else "The Mail Add-on is disabled.", "success")
        return redirect(url_for("setup.mail_addon"), 303)
    return render("setup/mail_addon.html", form=form, addon_on=mail_addon_enabled(),
                  settings_form=MailAddonAdminForm(obj=org_settings()))


@bp.route("/addons/mail/settings", methods=["POST"])
@admin_required
def mail_addon_settings():
    """The outbound guard's allowed servers and the organisation's hosted mail domain."""
    form = MailAddonAdminForm()
    entries = []
    if form.validate():
        try:
            entries = [validate_allowed_entry(e) for e in form.allowed_mail_hosts.data.replace(",", "\n").splitlines()
                       if e.strip()]
        except ValueError as e:
            form.allowed_mail_hosts.errors.append(str(e))
    if form.errors:
        return render("setup/mail_addon.html", "settings_form", status=422, form=ConfirmForm(),
                      addon_on=mail_addon_enabled(), settings_form=form)
    org = org_settings_for_update()
    form.populate_obj(org)
    org.allowed_mail_hosts = "\n".join(entries)
    org.hosted_domain = org.hosted_domain.lower()
    db.session.commit()
    flash("Mail Add-on settings saved.", "success")
    return redirect_to(url_for("setup.mail_addon"))
