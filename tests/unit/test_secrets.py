"""Mail passwords at rest: SecretBox and where its key comes from."""
import base64
import hashlib
import os
import stat

import pytest
from cryptography.fernet import Fernet

from mail.secrets import KEY_FILE_NAME, SecretBox, SecretError, load_or_create_key


def test_round_trip_returns_the_plaintext():
    box = SecretBox(Fernet.generate_key())
    for plaintext in ["hunter2", "pässwörd ✓ with spaces", ""]:
        token = box.encrypt(plaintext)
        assert token.isascii() and (plaintext not in token or plaintext == "")
        assert box.decrypt(token) == plaintext


def test_same_plaintext_encrypts_differently_each_time():
    box = SecretBox(Fernet.generate_key())
    assert box.encrypt("hunter2") != box.encrypt("hunter2")


@pytest.mark.parametrize("token", ["not a token", "gAAAAA", "ünïcode"])
def test_damaged_token_raises_secret_error(token):
    with pytest.raises(SecretError):
        SecretBox(Fernet.generate_key()).decrypt(token)


def test_changed_key_asks_for_the_password_again():
    token = SecretBox(Fernet.generate_key()).encrypt("hunter2")
    with pytest.raises(SecretError) as caught:
        SecretBox(Fernet.generate_key()).decrypt(token)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == "The stored password could not be decrypted; enter it again."


def test_invalid_key_raises_secret_error():
    with pytest.raises(SecretError):
        SecretBox(b"too short")


def test_key_file_created_once_with_mode_0600(tmp_path):
    instance = tmp_path / "instance"  # does not exist yet
    key = load_or_create_key(None, str(instance))
    path = instance / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key("", str(instance)) == key
    assert path.read_bytes().strip() == key
    assert sorted(os.listdir(instance)) == [KEY_FILE_NAME]  # no temporary file left behind
    SecretBox(key)


def test_environment_key_wins_over_the_file(tmp_path):
    env_key = Fernet.generate_key()
    assert load_or_create_key(env_key.decode(), str(tmp_path)) == env_key
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_environment_phrase_that_is_not_a_fernet_key_is_hashed(tmp_path):
    phrase = "correct horse battery staple"
    key = load_or_create_key(phrase, str(tmp_path))
    assert key == base64.urlsafe_b64encode(hashlib.sha256(phrase.encode()).digest())
    assert SecretBox(key).decrypt(SecretBox(key).encrypt("x")) == "x"


def test_key_file_without_a_valid_key_raises(tmp_path):
    (tmp_path / KEY_FILE_NAME).write_text("garbage\n")
    with pytest.raises(SecretError, match="does not hold a valid key"):
        load_or_create_key(None, str(tmp_path))
