"""What mail code needs from the running app, handed in rather than imported from Flask."""
from __future__ import annotations

from dataclasses import dataclass

from mail.guard import GuardPolicy, policy_from_config
from mail.secrets import SecretBox
from mail.servers import ServerSettings
from models import OrgSettings, db


@dataclass
class MailContext:
    box: SecretBox  # encrypts and decrypts mail passwords
    allow_local: bool  # MAIL_ALLOW_LOCAL_SERVERS: any address and port (tests, the demo)
    cafile: str | None = None  # MAIL_TLS_CA_FILE: extra CA bundle (self-hosted servers, tests)
    timeout_s: float = 10.0
    max_message_bytes: int = 25 * 1024 * 1024  # MAIL_MAX_MESSAGE_BYTES: larger ones stay on the server

    def policy(self) -> GuardPolicy:
        """The guard policy in force now: the switch plus what an administrator allowed."""
        org = db.session.get(OrgSettings, 1)
        return policy_from_config(self.allow_local, org.allowed_mail_hosts if org else "")

    def settings(self, server, password: str, oauth: bool = False) -> ServerSettings:
        """How to reach `server` (a MailAccount, a SendAs or a form's input) with this password,
        or with oauth, this OAuth access token (signed in with SASL XOAUTH2)."""
        security = getattr(server.security, "value", server.security)
        return ServerSettings(host=server.host, port=server.port, security=security, username=server.username,
                              password=password, timeout_s=self.timeout_s, cafile=self.cafile, oauth=oauth)

    def policy_then_release(self) -> GuardPolicy:
        """The guard policy; then the transaction ends and gives its connection back.

        For callers about to wait on a mail server: no transaction may wait with them (DESIGN
        invariant 8), as on SQLite it holds the write lock from its start. Everything they need
        from the database must be read before; what they write after starts a new transaction.
        """
        policy = self.policy()
        db.session.commit()
        return policy
