"""What Mail Accounts and Send Mail As pages share: the mail context, the user's own rows or a
404, the password page, and the flash after mailing a verification code."""
from __future__ import annotations

from flask import abort, current_app, flash
from flask_login import current_user

from blueprints.mail_forms import PasswordChangeForm
from blueprints.web import redirect_to, render
from mail.context import MailContext
from mail.inbound import accounts
from mail.outbound import identities


def mail_context() -> MailContext:
    return current_app.extensions["mail"]


def get_account_or_404(account_id: int):
    """The signed-in user's own account; anyone else's is a 404, as if it did not exist."""
    return accounts.get_account(current_user, account_id) or abort(404)


def get_identity_or_404(identity_id: int):
    """The signed-in user's own identity; anyone else's is a 404, as if it did not exist."""
    return identities.get_identity(current_user, identity_id) or abort(404)


def password_change(change, *, heading: str, subject: str, done: str, back: str):
    """The password page of an account or identity: `change(password)` tests it and keeps it if it works."""
    form = PasswordChangeForm()
    report = None
    if form.validate_on_submit():
        report = change(form.password.data)
        if report.ok:
            flash(done, "success")
            return redirect_to(back)
    status = 422 if form.is_submitted() else 200
    return render("mail_settings/password.html", "password_form", status=status, form=form, report=report,
                  heading=heading, cancel_url=back, subject=subject)
