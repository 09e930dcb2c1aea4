"""What every blueprint shares: page-or-fragment rendering, access decorators, headers."""
from __future__ import annotations

from functools import wraps
from urllib.parse import unquote, urlsplit

from flask import Flask, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from jinja2_fragments.flask import render_block
from werkzeug.routing import IntegerConverter

from crm import users
from mail.org import ADDON_DISABLED_MESSAGE, mail_addon_enabled
from mail.inbound import leases

# Our pages load only our own scripts and styles; mail HTML gets a stricter policy of its own.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'; object-src 'none'"
)
# The largest id a database integer holds (SQLite raises past it): larger ones are a 404.
DATABASE_ID_MAX = 2**63 - 1
# Past the last page of anything we list; a larger page number means the last page.
PAGE_MAX = 100_000
NUL_MESSAGE = ("The form or link contained a character that cannot be stored (a NUL byte). "
               "Remove it and try again.")
# Longer than any path of ours; a longer "next" or "back" is not one of them.
LOCAL_PATH_MAX_CHARS = 2000
# Percent-decoding rounds checked: what a proxy, a server and a browser might each decode once.
LOCAL_PATH_DECODE_ROUNDS = 3


def is_htmx() -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def render(template: str, block: str | None = None, status: int = 200, **context):
    """The whole page, or for an htmx request only `block` of it: they cannot drift apart."""
    if block and is_htmx():
        return render_block(template, block, **context), status
    return render_template(template, **context), status


def redirect_to(url: str):
    """After a successful POST: 303 to a GET, or for htmx a full navigation to it."""
    if is_htmx():
        return "", 200, {"HX-Redirect": url}
    return redirect(url, 303)


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in every route: an id past what the database holds answers 404, not 500."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = DATABASE_ID_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def page_arg() -> int:
    """The ?page= number of a list, clamped to 1..PAGE_MAX (the query clamps it to its last page)."""
    return min(max(1, request.args.get("page", 1, type=int)), PAGE_MAX)


def safe_local_path(value: str | None, default: str) -> str:
    """`value` when it is a path of this site, else `default`: for every redirect or back link
    taken from a request (an open redirect would make our pages a phishing tool).

    Browsers drop tabs and line breaks inside URLs, read a backslash as a slash and a leading
    "//" as another host; a proxy or a browser may decode percent-escapes once more. So the
    value is judged after each such decoding, and anything doubtful goes to the default.
    """
    if not value or len(value) > LOCAL_PATH_MAX_CHARS:
        return default
    decoded = value
    for _ in range(LOCAL_PATH_DECODE_ROUNDS + 1):
        if not _plain_path(decoded):
            return default
        decoded, before = unquote(decoded), decoded
        if decoded == before:
            return value
    return default  # still encoded after every round: not a link of ours


def _plain_path(value: str) -> bool:
    parts = urlsplit(value)
    return (value.startswith("/") and not value.startswith("//") and "\\" not in value and value.isprintable()
            and not parts.scheme and not parts.netloc)


def admin_required(view):
    """Administrators only; others get the 403 page."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, "Only an administrator can open this page.")
        return view(*args, **kwargs)

    return wrapped


def mail_addon_required(view):
    """Mail pages and endpoints: 403 with the explanation while the add-on is disabled."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not mail_addon_enabled():
            abort(403, ADDON_DISABLED_MESSAGE)
        return view(*args, **kwargs)

    return wrapped


def init_app(app: Flask) -> None:
    """Before any blueprint is registered: the routes' converters are bound as they are added."""
    app.url_map.converters["int"] = DatabaseIdConverter
    app.before_request(refuse_nul_bytes)
    app.before_request(_first_run_gate())
    app.after_request(security_headers)
    app.context_processor(lambda: {
        "addon_enabled": mail_addon_enabled if current_user.is_authenticated else (lambda: False),
        "htmx_request": is_htmx, "polling": leases.is_polling, "progress": leases.progress_sentence})


def refuse_nul_bytes() -> None:
    # PostgreSQL cannot store a NUL in text, and no field of ours means one: one 400 here
    # instead of a failed query in whichever view reads the value.
    values = [request.path, *request.args.keys(), *request.args.values()]
    if request.method == "POST":
        values += [*request.form.keys(), *request.form.values()]
    if any("\x00" in value for value in values):
        abort(400, NUL_MESSAGE)


def _first_run_gate():
    """With no users yet, the only page is "Create the administrator"."""
    seen_users = False  # once there is a user there always is one: stop asking the database

    def first_run():
        nonlocal seen_users
        if seen_users or request.endpoint in ("static", "auth.setup_admin") or request.endpoint is None:
            return None
        if users.count_users() == 0:
            return redirect(url_for("auth.setup_admin"))
        seen_users = True
        return None
    return first_run


def security_headers(response):
    response.vary.add("HX-Request")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    return response
