"""A second aiosmtpd for the organisation's outgoing relay, beside the users' own `smtp_server`.

Import both fixtures into a test module: `smtp_relay` starts the relay, and this `mail_cafile`
overrides the shared one so that the app trusts the relay's certificate too.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import SmtpServer, _make_base

__all__ = ["smtp_relay", "mail_cafile"]


@pytest.fixture(scope="session")
def smtp_relay() -> Iterator[SmtpServer]:
    base = _make_base("crm-relay-")
    server = SmtpServer(base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def mail_cafile(mail_cafile, smtp_relay, tmp_path_factory):
    """The shared CA bundle plus the relay's certificate."""
    path = tmp_path_factory.mktemp("ca-relay") / "bundle.pem"
    path.write_text(Path(mail_cafile).read_text() + Path(smtp_relay.cafile).read_text())
    return str(path)
