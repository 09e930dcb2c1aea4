"""Sign-in, sign-out and the first run's "Create the administrator"."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from blueprints.forms import SignInForm, UserForm
from blueprints.web import render, safe_local_path
from crm import users

bp = Blueprint("auth", __name__)


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    """Sign in with email and password; repeated failures from one client are slowed down."""
    if current_user.is_authenticated:
        return redirect(url_for("records.home"))
    form = SignInForm()
    error = None
    if form.validate_on_submit():
        try:
            user = users.authenticate(form.email.data, form.password.data,
                                      client=users.client_key(request.remote_addr))
        except users.SignInError as e:
            error = str(e)
        else:
            users.start_session(user)
            login_user(user, remember=form.remember.data)
            return redirect(safe_local_path(request.args.get("next"), url_for("records.home")), 303)
    status = 422 if form.is_submitted() else 200
    return render("auth/signin.html", form=form, error=error, status=status)


@bp.route("/signout", methods=["POST"])
@login_required
def signout():
    """Sign out (a POST, so another site cannot sign people out with a link); the session ends
    on the server too, so a copy of its cookies signs no one in."""
    users.end_session(current_user)
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.signin"), 303)


@bp.route("/setup-admin", methods=["GET", "POST"])
def setup_admin():
    """First run: create the administrator. Gone once any user exists."""
    if users.count_users():
        abort(404)
    form = UserForm()
    del form.admin
    if form.validate_on_submit():
        user = users.create_user(form.email.data, form.name.data, form.password.data, admin=True)
        users.start_session(user)
        login_user(user)
        flash("Welcome! You are the administrator. Enable the Mail Add-on in Setup when you are ready.", "success")
        return redirect(url_for("records.home"), 303)
    return render("auth/setup_admin.html", form=form, status=422 if form.is_submitted() else 200)
