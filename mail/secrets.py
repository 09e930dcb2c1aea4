"""Mail passwords at rest: Fernet encryption with a key kept outside the database.

A database dump alone then reveals no mailbox password. The key comes from the
MAIL_SECRET_KEY environment variable, or from instance/mail_secret.key, created on first use.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE_NAME = "mail_secret.key"
KEY_FILE_MODE = 0o600

log = logging.getLogger(__name__)


class SecretError(ValueError):
    """A stored secret cannot be used; str() is a sentence for the user."""


class SecretBox:
    """Encrypts and decrypts short strings such as mail passwords."""

    def __init__(self, key: bytes) -> None:
        """Raises SecretError if key is not a Fernet key."""
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretError("The mail secret key is not a valid key.") from None

    def encrypt(self, plaintext: str) -> str:
        """Return an ASCII token safe to store in a text column."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Return the plaintext. Raises SecretError if the key changed or the token is damaged."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError, TypeError):
            raise SecretError("The stored password could not be decrypted; enter it again.") from None


def key_from_text(value: str) -> bytes:
    """Return value as a Fernet key if it is one; else a key derived from it with SHA-256.

    Deriving lets an administrator set any long random phrase; a real Fernet key (from
    Fernet.generate_key()) is used as it is.
    """
    raw = value.strip().encode("utf-8")
    try:
        Fernet(raw)
        return raw
    except ValueError:
        return base64.urlsafe_b64encode(hashlib.sha256(raw).digest())


def load_or_create_key(env_value: str | None, instance_path: str) -> bytes:
    """Return the key: env_value (MAIL_SECRET_KEY) if set, else instance_path/mail_secret.key.

    The file is created with mode 0600 when missing. Two processes starting at once agree
    on one key: the file appears complete or not at all (link into place, never overwrite).
    Raises SecretError if an existing key file holds no valid key, OSError if it cannot be written.
    """
    if env_value and env_value.strip():
        return key_from_text(env_value)
    path = os.path.join(instance_path, KEY_FILE_NAME)
    if not os.path.exists(path):
        os.makedirs(instance_path, exist_ok=True)
        _write_new_key(path)
    with open(path, "rb") as fh:
        key = fh.read().strip()
    try:
        Fernet(key)
    except ValueError:
        raise SecretError(f"The key file {path} does not hold a valid key.") from None
    return key


def _write_new_key(path: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".mail_secret-")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), KEY_FILE_MODE)
            fh.write(Fernet.generate_key() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another process won the race: keep its key
            log.warning("Created a new mail secret key in %s; back it up with the database.", path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
