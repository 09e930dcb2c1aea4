"""Fixtures for signing in with OAuth 2.0: the authorization server, Dovecot and aiosmtpd that
check its tokens, and the Microsoft-like proxy (definitions in tests/oauth_servers.py)."""
from tests.oauth_servers import *  # noqa: F401,F403
