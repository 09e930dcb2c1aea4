"""The CRM Mail Add-on: application factory (config, extensions, blueprints, CLI)."""
from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
from pathlib import Path

from flask import Flask, request, request_started
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from crm import users
from mail.context import MailContext
from mail.inbound import worker
from mail.secrets import SecretBox, load_or_create_key
from models import User, db, reads_only

csrf = CSRFProtect()
login_manager = LoginManager()
migrate = Migrate()
HERE = Path(__file__).resolve().parent


def create_app(overrides: dict | None = None) -> Flask:
    """Build the app; `overrides` (tests) win over the environment."""
    overrides = dict(overrides or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or os.environ.get("INSTANCE_PATH")
    app = Flask(__name__, instance_path=instance_path or str(HERE / "instance"))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(_config_from_env(app.instance_path))
    app.config.update(overrides)
    # "Keep me signed in" lasts a year: never over plain HTTP when the session itself is not.
    app.config["REMEMBER_COOKIE_SECURE"] = bool(app.config.get("REMEMBER_COOKIE_SECURE")
                                                or app.config["SESSION_COOKIE_SECURE"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path, "secret_key")
    if app.config["TRUST_PROXY"]:
        # Behind one reverse proxy: trust its X-Forwarded-For/-Proto/-Host for URLs and cookies.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    db.init_app(app)
    _reads_only_for_safe_methods(app)
    is_sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    migrate.init_app(app, db, directory=str(HERE / "migrations"), render_as_batch=is_sqlite)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.signin"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"

    key = load_or_create_key(app.config["MAIL_SECRET_KEY"], app.instance_path)
    app.extensions["mail"] = MailContext(
        box=SecretBox(key), allow_local=bool(app.config["MAIL_ALLOW_LOCAL_SERVERS"]),
        cafile=app.config["MAIL_TLS_CA_FILE"], timeout_s=app.config["MAIL_TIMEOUT_S"],
        max_message_bytes=app.config["MAIL_MAX_MESSAGE_BYTES"])

    from blueprints import (addon_settings, auth, cli, compose, email, errors, mail_settings, oauth, records,
                            related, send_as, settings, setup, web)

    web.init_app(app)
    errors.init_app(app)
    for blueprint in (auth.bp, records.bp, setup.bp, settings.bp, mail_settings.bp, send_as.bp, oauth.bp, addon_settings.bp, related.bp, compose.bp, email.bp, cli.bp):
        app.register_blueprint(blueprint)
    from blueprints import mail_cli

    app.register_blueprint(mail_cli.bp)
    if app.config["MAIL_POLLER"] == "thread":  # this process polls the mail accounts itself
        _start_poller_with_first_request(app)
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return app


def _reads_only_for_safe_methods(app: Flask) -> None:
    """GET and HEAD requests only read: their SQLite transactions take no write lock (models.py);
    the few that write do it in models.writing(). Registered first, before anything reads."""
    @app.before_request
    def begin_reads_only() -> None:
        reads_only(request.method in ("GET", "HEAD"))

    @app.teardown_request
    def end_reads_only(error: BaseException | None) -> None:
        reads_only(False)


def _start_poller_with_first_request(app: Flask) -> None:
    """Start the mail poller thread with the first request.

    Not at import: every `flask` command (db upgrade, mail worker) builds the app too, and none
    of them should poll. Two web processes each run one; the leases keep them apart.
    """
    lock = threading.Lock()

    def start_mail_poller(sender: Flask, **extra: object) -> None:
        with lock:
            if "mail_poller" not in app.extensions:
                poller = worker.start_poller_thread(app.app_context, app.extensions["mail"])
                app.extensions["mail_poller"] = poller
                atexit.register(poller.stop, 5)

    # A signal rather than before_request: a before_request that redirects (sign-in, setup)
    # would skip the ones registered after it.
    request_started.connect(start_mail_poller, app, weak=False)


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    # Cookies carry a session token, not the user id: a session that was ended (sign-out, a
    # password change, a deactivation) signs no one in, whichever cookie is replayed.
    return users.session_user(session_token)


def _config_from_env(instance_path: str) -> dict:
    env = os.environ.get
    return {
        "SECRET_KEY": env("SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": _database_url(env("DATABASE_URL"), instance_path),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env("SESSION_COOKIE_SECURE", "0") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "TRUST_PROXY": env("TRUST_PROXY", "0") == "1",
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "MAX_CONTENT_LENGTH": 30 * 1024 * 1024,
        "MAIL_SECRET_KEY": env("MAIL_SECRET_KEY"),
        "MAIL_ALLOW_LOCAL_SERVERS": env("MAIL_ALLOW_LOCAL_SERVERS", "0") == "1",
        "MAIL_TLS_CA_FILE": env("MAIL_TLS_CA_FILE") or None,
        "MAIL_TIMEOUT_S": float(env("MAIL_TIMEOUT_S", "10")),
        "MAIL_POLLER": env("MAIL_POLLER", "off"),  # "thread": the web process polls; "off": workers do
        "MAIL_MAX_MESSAGE_BYTES": int(env("MAIL_MAX_MESSAGE_BYTES", str(25 * 1024 * 1024))),
    }


def _database_url(url: str | None, instance_path: str) -> str:
    """DATABASE_URL, with plain postgres URLs sent through psycopg 3; else SQLite in instance/."""
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "crm.sqlite3")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _instance_secret(instance_path: str, name: str) -> str:
    """A random secret generated once into instance/ (mode 0600) and read back afterwards."""
    path = Path(instance_path) / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or just now by another worker process
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()
