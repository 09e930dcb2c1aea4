"""mail.inbound.parsing.large: a large message parsed hollowed out says exactly what the ordinary parse says."""
import base64
import binascii
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mail.inbound.parsing import large
from mail.inbound.parsing import parse

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)


def contents(parsed: large.Parsed) -> list[bytes]:
    return [b"".join(parsed.deferred[i].chunks(1000)) if i in parsed.deferred else part.content
            for i, part in enumerate(parsed.email.attachments)]


def same(hollowed: large.Parsed, reference) -> None:
    got = hollowed.email
    assert contents(hollowed) == [part.content for part in reference.attachments]
    for name in ("message_id", "subject", "from_", "to", "cc", "date", "text", "html", "sha256", "size", "defects"):
        assert getattr(got, name) == getattr(reference, name), name
    assert [(a.filename, a.content_type, a.size, a.content_id, a.inline) for a in got.attachments] == \
        [(a.filename, a.content_type, a.size, a.content_id, a.inline) for a in reference.attachments]


@pytest.fixture
def everything_is_large(monkeypatch):
    monkeypatch.setattr(large, "LARGE_MESSAGE_BYTES", 0)
    monkeypatch.setattr(large, "HOLLOW_MIN_BYTES", 64)
    monkeypatch.setattr(large, "DECODE_STEP_BYTES", 300)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.eml")), ids=lambda p: p.name)
def test_every_corpus_message_parses_the_same_hollowed_out(everything_is_large, path):
    raw = path.read_bytes()
    same(large.parse_message(bytearray(raw), NOW), parse(raw, NOW))


def attachment_message(payload: bytes, *, crlf: bool = True, padding_inside: bool = False) -> bytes:
    encoded = base64.encodebytes(payload)
    if padding_inside:
        encoded = base64.encodebytes(payload[:10]) + encoded  # two base64 blocks glued together
    text = (b"From: a@x.example\nTo: b@y.example\nSubject: files\nMessage-ID: <f@x.example>\n"
            b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="zz"\n\n--zz\n'
            b"Content-Type: text/plain\n\nHello.\n--zz\nContent-Type: application/pdf\n"
            b'Content-Disposition: attachment; filename="a.pdf"\nContent-Transfer-Encoding: base64\n\n'
            + encoded + b"--zz--\n")
    return text.replace(b"\n", b"\r\n") if crlf else text


@pytest.mark.parametrize("size", [1, 2, 3, 4999, 5000, 5001])
@pytest.mark.parametrize("crlf", [True, False])
def test_a_big_attachment_is_decoded_from_the_buffer_in_pieces(everything_is_large, size, crlf):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    raw = attachment_message(payload, crlf=crlf)
    hollowed = large.parse_message(bytearray(raw), NOW)
    assert list(hollowed.deferred) == ([0] if len(raw) > 600 else [])
    same(hollowed, parse(raw, NOW))
    assert contents(hollowed) == [payload]


def test_a_body_the_standard_library_decodes_its_own_way_is_left_to_it(everything_is_large):
    raw = attachment_message(bytes(3000), padding_inside=True)
    hollowed = large.parse_message(raw, NOW)
    assert hollowed.deferred == {}
    same(hollowed, parse(raw, NOW))


def test_a_small_message_takes_the_ordinary_path():
    raw = attachment_message(bytes(3000))
    parsed = large.parse_message(bytearray(raw), NOW)
    assert parsed.deferred == {} and parsed.email == parse(raw, NOW)


def test_a_truncated_base64_body_is_refused_rather_than_guessed():
    body = large.Base64Body(b"QUJD\r\nRA", 0, 8, 4)
    with pytest.raises(binascii.Error):
        b"".join(body.chunks(2))
