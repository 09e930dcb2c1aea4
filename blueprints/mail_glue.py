"""What Mail Accounts and Send Mail As pages share: the mail context, the user's own rows or a
404, the password page, and the answer after a change to a list."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import abort, current_app, flash, url_for
from flask_login import current_user

from blueprints.mail_forms import PasswordChangeForm
from blueprints.web import is_htmx, redirect_to, render
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


@dataclass(frozen=True)
class PasswordPage:
    """What differs between the incoming and the outgoing password page."""
    heading: str
    done: str  # {name}: the server's name in the page
    list_endpoint: str  # where Cancel and success lead
    name: Callable  # the row -> its name in the page (an account's name, an identity's address)
    change: Callable  # (context, row, password) -> TestReport; keeps the password only if it works


def password_change(server, page: PasswordPage):
    """The password page of an account or identity: the new password is tested and kept if it works."""
    form = PasswordChangeForm()
    back, name = url_for(page.list_endpoint), page.name(server)
    report = None
    if form.validate_on_submit():
        report = page.change(mail_context(), server, form.password.data)
        if report.ok:
            flash(page.done.format(name=name), "success")
            return redirect_to(back)
    status = 422 if form.is_submitted() else 200
    return render("mail_settings/password.html", "password_form", status=status, form=form, report=report,
                  heading=page.heading, cancel_url=back,
                  subject=f"{name}: {server.username} on {server.host}:{server.port}")


def list_changed(message: str, list_view, endpoint: str):
    """After a change to a row of a list: say so, then the list again (htmx) or a redirect to it."""
    flash(message, "success")
    if is_htmx():
        return list_view()
    return redirect_to(url_for(endpoint))
