"""Shared fixtures: the app on SQLite and PostgreSQL, clients, and the real servers."""
from tests.servers import *  # noqa: F401,F403  (Dovecot and SMTP fixtures)
