"""Settings: each user's own (their password; Mail: Mail Accounts and Send Mail As)."""
from __future__ import annotations

from flask import Blueprint, flash, url_for
from flask_login import current_user, login_required
from werkzeug.security import check_password_hash
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, ValidationError

from blueprints.forms import ConfirmForm, HumaneForm, Length
from blueprints.web import redirect_to, render
from crm import users

bp = Blueprint("settings", __name__, url_prefix="/settings")


class PasswordForm(HumaneForm):
    current = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    password = PasswordField("New password", validators=[DataRequired("Choose a new password."),
                                                         Length(min=users.PASSWORD_MIN_LENGTH, max=200)])
    confirm = PasswordField("Confirm new password", validators=[DataRequired("Type the new password again."),
                                                                EqualTo("password", "The passwords do not match.")])

    def validate_current(self, field):
        if not check_password_hash(current_user.password_hash, field.data):
            raise ValidationError("This is not your current password.")


@bp.route("/", methods=["GET", "POST"])
@login_required
def index():
    """My settings: change my password; links to the Mail settings."""
    form = PasswordForm()
    if form.validate_on_submit():
        users.set_password(current_user, form.password.data)
        flash("Your password has been changed. Every other session of yours has ended.", "success")
        return redirect_to(url_for("settings.index"))
    return render("settings/index.html", "password_form", status=422 if form.is_submitted() else 200, form=form,
                  sessions_form=ConfirmForm())


@bp.route("/sessions/end", methods=["POST"])
@login_required
def sessions_end():
    """Sign out everywhere: every other session of mine ends ("keep me signed in" ones too)."""
    if ConfirmForm().validate_on_submit():
        users.end_other_sessions(current_user)
        flash("You have been signed out everywhere else.", "success")
    return redirect_to(url_for("settings.index"))

