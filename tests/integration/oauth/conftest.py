"""The fixtures for signing in with OAuth 2.0 (the authorization server, Dovecot and aiosmtpd that
check its tokens, the Microsoft-like proxy) come from tests/oauth_servers.py through tests/conftest.py."""
