"""Error pages: 400 (stale form), 403, 404, 500; never a traceback in a page."""
from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from jinja2_fragments.flask import render_block
from werkzeug.exceptions import HTTPException, InternalServerError

from blueprints.web import is_htmx
from models import db

TITLES = {
    400: "This form could not be accepted",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    413: "Too large",
    500: "Something went wrong",
}
DEFAULT_MESSAGES = {
    404: "There is nothing here. It may have been deleted, or the link is wrong.",
    500: "The error has been logged. Please try again; if it keeps happening, tell an administrator.",
}
CSRF_MESSAGE = "Your session has expired or the page was out of date. Reload the page and try again."


def _render(status: int, message: str):
    title = TITLES.get(status, "Error")
    if is_htmx():
        # A fragment goes to the page's message area, whatever the request's target was.
        html = render_block("errors.html", "error_message", title=title, message=message)
        return html, status, {"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"}
    return render_template("errors.html", title=title, message=message, status=status), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        return _render(400, CSRF_MESSAGE)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        message = DEFAULT_MESSAGES.get(error.code)
        if error.description and error.description != type(error).description:
            message = error.description  # a sentence a view gave on purpose
        return _render(error.code, message or error.description)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):  # HTTP errors have their own handler above
        app.logger.exception("Unhandled error")  # the traceback goes to the log, never the page
        db.session.rollback()
        return _render(500, DEFAULT_MESSAGES[500])

    @app.errorhandler(InternalServerError)
    def internal_error(error: InternalServerError):
        app.logger.error("Internal error: %s", getattr(error, "original_exception", error))
        return _render(500, DEFAULT_MESSAGES[500])
