"""What mail code needs from the running app, handed in rather than imported from Flask."""
from __future__ import annotations

from dataclasses import dataclass

from mail.guard import GuardPolicy, policy_from_config
from mail.secrets import SecretBox
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
