"""The XOAUTH2 string and the server's error challenge (mail/sasl.py)."""
from __future__ import annotations

import base64
import json

import pytest

from mail import sasl

# Google's documented example (developers.google.com, "OAuth 2.0 Mechanism").
GOOGLE_EXAMPLE = ("dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==")
# Dovecot's answer to a refused token (base64 of {"status":"401","schemes":"bearer","scope":"mail"}).
DOVECOT_REFUSAL = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"mail"}').decode()


def test_the_string_matches_googles_example() -> None:
    assert sasl.xoauth2_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg") == GOOGLE_EXAMPLE


def test_the_string_is_user_then_bearer_token_with_ctrl_a_separators() -> None:
    raw = base64.b64decode(sasl.xoauth2_string("ann@example.com", "tok-123"))
    assert raw == b"user=ann@example.com\x01auth=Bearer tok-123\x01\x01"


@pytest.mark.parametrize("user, token", [("ann\x01@x", "t"), ("ann@x", "t\r\nQUIT"), ("ann@x\n", "t")])
def test_control_characters_cannot_smuggle_fields_or_commands(user: str, token: str) -> None:
    with pytest.raises(ValueError) as caught:
        sasl.xoauth2_string(user, token)
    assert "t\r\nQUIT" not in str(caught.value)


@pytest.mark.parametrize("line", [f"+ {DOVECOT_REFUSAL}", f"334 {DOVECOT_REFUSAL}", DOVECOT_REFUSAL,
                                  f"+ {DOVECOT_REFUSAL}".encode()])
def test_the_error_challenge_decodes_to_its_json(line: str | bytes) -> None:
    assert sasl.decode_challenge(line) == {"status": "401", "schemes": "bearer", "scope": "mail"}


@pytest.mark.parametrize("line", ["+", "+ ", "334 ", "+ not base64!", "+ " + base64.b64encode(b"[1, 2]").decode(),
                                  "+ " + base64.b64encode(b"plain words").decode()])
def test_an_empty_or_odd_challenge_decodes_to_nothing(line: str) -> None:
    assert sasl.decode_challenge(line) == {}


def test_the_refusal_sentence_names_the_address_and_the_status() -> None:
    assert sasl.refused_sentence("ann@example.com", {"status": "401"}) == (
        "The mail server did not accept the sign-in for ann@example.com: the access was refused "
        "or has expired (status 401).")
    assert sasl.refused_sentence("ann@example.com", {}) == (
        "The mail server did not accept the sign-in for ann@example.com.")
    odd = sasl.refused_sentence("ann@example.com", json.loads('{"status": "599"}'))
    assert odd.endswith("it gave no reason (status 599).")


def test_the_smtp_answer_never_shows_its_token() -> None:
    answer = sasl._SmtpXoauth2("ann@example.com", "secret-token-value")
    assert "secret-token-value" not in repr(answer)
    assert answer(b"") == "user=ann@example.com\x01auth=Bearer secret-token-value\x01\x01"
    assert answer(b'{"status":"400"}') == ""  # the empty line that ends a refused exchange
    assert answer.details == {"status": "400"}
