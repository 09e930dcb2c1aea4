"""The Email tab: the user's own mail."""
from __future__ import annotations

from flask import Blueprint

from blueprints.web import mail_addon_required, render

bp = Blueprint("email", __name__, url_prefix="/email")


@bp.route("/")
@mail_addon_required
def inbox():
    """The Email tab."""
    return render("email/inbox.html")
