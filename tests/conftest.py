"""Shared fixtures: the app on SQLite and again on PostgreSQL, clients, sign-in, real servers.

Every test that uses `app` (or `client`, `auth`, ...) runs twice: once on SQLite and once on a
throw-away PostgreSQL cluster started for this run. Each database is migrated once per run
(the schema comes only from migrations/) and emptied after every test.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from app import create_app
from crm import users
from models import db
from tests.pg import PostgresCluster
from tests.servers import *  # noqa: F401,F403  (Dovecot and SMTP fixtures)
from tests.oauth_servers import *  # noqa: F401,F403  (the OAuth server, and Dovecot and aiosmtpd checking its tokens)

BACKENDS = ["sqlite", "postgresql"]
PASSWORD = "correct horse battery"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    # scrypt costs ~70 ms a user; the tests create thousands. Hashes are still checked for real.
    users.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"


@pytest.fixture(scope="session")
def pg_cluster():
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


def _migrate(url: str, instance_path: str) -> None:
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x", "INSTANCE_PATH": instance_path,
                      "MAIL_SECRET_KEY": "test mail secret key"})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory):
    """One migrated database per backend for the whole run (indirectly parametrised)."""
    backend = request.param
    instance = str(tmp_path_factory.mktemp(f"instance-{backend}"))
    if backend == "sqlite":
        url = "sqlite:///" + os.path.join(instance, "test.sqlite3")
    else:
        url = request.getfixturevalue("pg_cluster").create_database("crm_test")
    _migrate(url, instance)
    return url


def pytest_generate_tests(metafunc):
    # Every test that reaches the database runs on each backend; the id says which.
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", BACKENDS, indirect=True, scope="session")


def make_app(database_url: str, instance_path: str, **overrides):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "INSTANCE_PATH": instance_path,
        "WTF_CSRF_ENABLED": False,  # tests of CSRF itself turn it back on
        "MAIL_ALLOW_LOCAL_SERVERS": True,
        "MAIL_SECRET_KEY": "test mail secret key",
    }
    config.update(overrides)
    return create_app(config)


def empty_database() -> None:
    # Row by row, children first: on tables this small DELETE is several times quicker than
    # TRUNCATE, which makes new files for every table. PostgreSQL's ids then start again at 1.
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S'"))
    db.session.commit()


# Apps kept for the whole run by the fixtures that only read their config (app, mail_app): building
# one costs ~100 ms (URL rules compiled, every template and statement compiled again for its new
# Jinja environment and engine), about as much as the average test itself. The database is still
# emptied after every test and the engine's connections closed; only the compiled parts stay warm.
_KEPT_APPS: dict[tuple, object] = {}


def _kept_app(database_url: str, **overrides):
    key = (database_url, tuple(sorted((name, repr(value)) for name, value in overrides.items())))
    if key not in _KEPT_APPS:
        instance = tempfile.mkdtemp(prefix="crm-kept-app-")
        atexit.register(shutil.rmtree, instance, True)
        _KEPT_APPS[key] = make_app(database_url, instance, **overrides)
    return _KEPT_APPS[key]


@pytest.fixture
def app_factory(database_url, tmp_path):
    """Make apps on this test's database with extra config; emptied afterwards. With keep=True
    the app is one kept for the run (for callers that never change the app itself: no routes
    added, no config changed)."""
    made = []

    def factory(keep: bool = False, **overrides):
        if keep:
            made.append(_kept_app(database_url, **overrides))
        else:
            made.append(make_app(database_url, str(tmp_path / "instance"), **overrides))
        return made[-1]

    yield factory
    for app in made[:1]:
        with app.app_context():
            db.session.remove()
            empty_database()
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


class FreshContextClient(FlaskClient):
    """Each request in an app context of its own, as in production (its own `g`, session).

    The test's own context stays pushed for direct database work; it is committed before each
    request (so the app sees what the test set up) and after it (so the test sees what the app did).
    """

    def open(self, *args, **kwargs):
        db.session.commit()
        with self.application.app_context():
            response = super().open(*args, **kwargs)
        db.session.commit()
        return response


@pytest.fixture
def app(app_factory):
    app = app_factory(keep=True)
    app.test_client_class = FreshContextClient
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    """Create a user: make_user("ann@x.example", admin=True)."""

    def make(email: str = "admin@example.com", name: str | None = None, admin: bool = False, password: str = PASSWORD):
        return users.create_user(email, name or email.split("@")[0].title(), password, admin=admin)

    return make


class Auth:
    def __init__(self, client):
        self.client = client

    def signin(self, email: str, password: str = PASSWORD, follow: bool = False):
        return self.client.post("/signin", data={"email": email, "password": password},
                                follow_redirects=follow)

    def signout(self):
        return self.client.post("/signout")


@pytest.fixture
def auth(client):
    return Auth(client)


@pytest.fixture
def admin(make_user, auth):
    """An administrator, signed in."""
    user = make_user("admin@example.com", name="Ada Admin", admin=True)
    auth.signin(user.email)
    return user


# --- Browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


class LiveServer:
    """The app served over HTTP from a thread, with CSRF on, on its own fresh SQLite file."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(5)


def _live_server(tmp_path, **config):
    instance = str(tmp_path / "live-instance")
    url = "sqlite:///" + os.path.join(tmp_path, "live.sqlite3")
    _migrate(url, instance)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "live-secret", "INSTANCE_PATH": instance,
                      "MAIL_ALLOW_LOCAL_SERVERS": True, "MAIL_SECRET_KEY": "test mail secret key", **config})
    return app, LiveServer(app)


@pytest.fixture
def live_server(tmp_path):
    """The app from its first start: no users yet."""
    app, server = _live_server(tmp_path)
    with server:
        yield server
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def mail_live_server(tmp_path, mail_cafile):
    """The app with the add-on enabled, trusting the test mail servers, and two users:
    server.admin and server.rep are (email, password)."""
    from mail.org import set_mail_addon_enabled

    app, server = _live_server(tmp_path, MAIL_TLS_CA_FILE=mail_cafile, MAIL_TIMEOUT_S=3, MAIL_POLLER="thread")
    with app.app_context():
        users.create_user("margaret@northwind.example", "Margaret Chen", PASSWORD, admin=True)
        users.create_user("daniel@northwind.example", "Daniel Ortiz", PASSWORD)
        users.create_user("priya@northwind.example", "Priya Nair", PASSWORD)
        set_mail_addon_enabled(True)
    server.admin = ("margaret@northwind.example", PASSWORD)
    server.rep = ("daniel@northwind.example", PASSWORD)
    server.rep2 = ("priya@northwind.example", PASSWORD)
    with server:
        yield server
    poller = app.extensions.get("mail_poller")
    if poller is not None:
        poller.stop(10)
    with app.app_context():
        db.engine.dispose()


def sign_in(page, server, who):
    """Sign in through the form as (email, password)."""
    page.goto(server.url + "/signin")
    page.locator("#email").fill(who[0])
    page.locator("#password").fill(who[1])
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def page(page):
    # Fail in seconds, not Playwright's default 30: every page here is local.
    page.set_default_timeout(5000)
    return page


# --- Mail --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mail_cafile(dovecot, smtp_server, tmp_path_factory):
    """One CA bundle that trusts the test Dovecot's and the test SMTP server's certificates."""
    path = tmp_path_factory.mktemp("ca") / "bundle.pem"
    path.write_text(Path(dovecot.cafile).read_text() + Path(smtp_server.cafile).read_text())
    return str(path)


@pytest.fixture
def mail_app(app_factory, mail_cafile):
    """The app with the Mail Add-on enabled, trusting the test servers' certificates."""
    from mail.org import set_mail_addon_enabled

    app = app_factory(keep=True, MAIL_TLS_CA_FILE=mail_cafile, MAIL_TIMEOUT_S=3)
    app.test_client_class = FreshContextClient
    with app.app_context():
        set_mail_addon_enabled(True)
        yield app


@pytest.fixture
def rep(mail_app):
    """A signed-in sales rep (standard user) and their test client: (user, client)."""
    users.create_user("admin@example.com", "Ada Admin", PASSWORD, admin=True)
    user = users.create_user("rep@example.com", "Rita Rep", PASSWORD)
    client = mail_app.test_client()
    client.post("/signin", data={"email": user.email, "password": PASSWORD})
    return user, client
