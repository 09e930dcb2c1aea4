"""mail.inbound.parsing against the real-world corpus (tests/corpus, see its SOURCES.md) and garbage."""
from __future__ import annotations

import base64
import email
import hashlib
import random
import re
import time
from datetime import datetime, timedelta, timezone
from email import policy
from pathlib import Path

import pytest

from mail.inbound import parsing
from mail.inbound.parsing import Address, parse, parse_headers
from models import normalise_address

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.eml"))
RECEIVED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
GENERATED_ID_RE = re.compile(r"[0-9a-f]{64}@generated\.invalid")


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def parsed(name: str):
    return parse(corpus(name), RECEIVED)


def header_section(raw: bytes) -> bytes:
    return raw.split(b"\n\n", 1)[0] + b"\n\n"


def assert_storable(text: str) -> None:
    assert "\x00" not in text
    text.encode("utf-8")  # no lone surrogates: PostgreSQL and SQLite both take it


def test_corpus_is_present() -> None:
    assert len(CORPUS_FILES) >= 389


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_message_parses_into_complete_record(path: Path) -> None:
    raw = path.read_bytes()
    mail = parse(raw, RECEIVED)

    assert mail.date.tzinfo is not None and mail.date.utcoffset() == timedelta(0)
    assert mail.message_id and not mail.message_id.startswith("<")
    assert not any(c.isspace() for c in mail.message_id)
    assert mail.sha256 == hashlib.sha256(raw).hexdigest() and mail.size == len(raw)
    assert not any(d.startswith("could not be parsed") for d in mail.defects)
    if mail.date_was_missing:
        assert mail.date == RECEIVED
    for attachment in mail.attachments:
        assert attachment.size == len(attachment.content)
        assert attachment.filename and not re.search(r"[/\\\x00-\x1f\x7f]", attachment.filename)
        assert re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", attachment.content_type)
    for address in [*mail.to, *mail.cc, *mail.reply_to, *([mail.from_] if mail.from_ else [])]:
        assert address.addr == normalise_address(address.addr) and "@" in address.addr
        assert "\n" not in address.name and "\r" not in address.name
    for text in [mail.subject, mail.text, mail.html or "", mail.message_id,
                 *(a.filename for a in mail.attachments), *(a.name for a in mail.to)]:
        assert_storable(text)
    assert len(mail.snippet) <= parsing.SNIPPET_CHARS


def test_rfc2047_subject_and_names_are_decoded() -> None:
    mail = parsed("mimekit-japanese.eml")
    assert mail.subject == "日本語メールテスト (testing Japanese emails)"

    mail = parsed("enmime-mail_qp-utf8-header-recursed.eml")
    assert mail.subject == "MIME UTF8 Test ¢ More Text"
    assert mail.to == [Address(name="Mirosław Marczak", addr="marczak@inbucket.com")]


def test_iso_2022_jp_body_and_headers_are_decoded() -> None:
    mail = parsed("rubymail-multi_charset_japanese_iso_2022.eml")
    assert mail.subject == "まみむめも"
    assert mail.to[0].name == "みける"
    assert mail.text.strip() == "すみません。"


def test_koi8_r_body_is_decoded() -> None:
    assert parsed("mimekit-tnef_ukr.eml").text.startswith("шостий")


def test_raw_8bit_headers_decode_in_the_body_charset() -> None:
    mail = parsed("spamassassin-nice_cjk_gb2312.1.eml")
    assert mail.subject.startswith("全新原装进口")
    assert any("8-bit" in d for d in mail.defects)
    assert parsed("rubymail-rfc6532_utf8_headers.eml").from_.name == "Jöhn Doe"


def test_unknown_charsets_fall_back_without_raising() -> None:
    mail = parsed("enmime-low-quality_unk-charset-part.eml")
    assert mail.text == "A text section"
    assert any("fakescii" in d for d in mail.defects)
    assert "Dear Colleague" in parsed("phpmime-issue230.eml").text  # x-mac-cyrillic
    assert parsed("james-invalidCharset.eml").text  # charset=%invalid


def test_8bit_attachment_filename_is_decoded() -> None:
    [attachment] = parsed("enmime-mail_mime-bad-8bit-filename.eml").attachments
    assert attachment.filename == "管理.doc"


def test_rfc2231_attachment_filenames_are_decoded() -> None:
    names = [a.filename for a in parsed("phpmime-issue274.eml").attachments]
    assert "Cours-Tutoriels-Serge-Tahé-1568x268.png" in names
    names = [a.filename for a in parsed("nodemailer-nodemailer.eml").attachments]
    assert "nyan cat ✔.gif" in names  # split over filename*0* and filename*1*


def test_missing_date_falls_back_to_received_at() -> None:
    mail = parsed("rubymail-multi_charset_japanese_iso_2022.eml")
    assert mail.date == RECEIVED and mail.date_was_missing


def test_unparseable_date_falls_back_to_received_at() -> None:
    mail = parsed("inbucket-utf8-subject.eml")  # Date: %DATE%
    assert mail.date == RECEIVED and mail.date_was_missing


def test_naive_received_at_is_taken_as_utc() -> None:
    mail = parse(b"Subject: no date\n\nbody\n", datetime(2025, 1, 2, 3, 4, 5))
    assert mail.date == RECEIVED


def test_date_is_converted_to_utc() -> None:
    mail = parsed("mimekit-jwz-28.eml")  # Mon, 29 Jul 1996 02:13:08 -0700
    assert mail.date == datetime(1996, 7, 29, 9, 13, 8, tzinfo=timezone.utc)
    assert not mail.date_was_missing


def test_missing_message_id_is_generated_the_same_on_every_parse() -> None:
    raw = corpus("rubymail-multi_charset_japanese_iso_2022.eml")
    first, second = parse(raw, RECEIVED), parse(raw, RECEIVED + timedelta(days=1))
    assert GENERATED_ID_RE.fullmatch(first.message_id)
    assert first.message_id == second.message_id
    assert parse_headers(header_section(raw), RECEIVED).message_id == first.message_id


def test_message_id_loses_its_angle_brackets() -> None:
    mail = parsed("mimekit-jwz-28.eml")
    assert mail.message_id == "96Jul29.022158-0700pdt.148226-12799+708@mm1.sprynet.com"


def test_in_reply_to_and_references_are_listed_without_brackets() -> None:
    raw = (b"Message-ID: <c@x>\nIn-Reply-To: <b@x> (Jane's message)\n"
           b"References: <a@x>\n <b@x> <a@x>\n\nbody\n")
    mail = parse(raw, RECEIVED)
    assert mail.in_reply_to == "b@x" and mail.references == ["a@x", "b@x"]


def test_group_address_does_not_lose_other_addresses() -> None:
    raw = (b"From: Jane <jane@example.org>\n"
           b"To: unlisted-recipients:;, Bob <BOB@Example.org>\n"
           b"Cc: Friends: carol@example.org, \"Dan, D.\" <dan@example.org>;, bad@@x\n\nhi\n")
    mail = parse(raw, RECEIVED)
    assert mail.to == [Address("Bob", "bob@example.org")]
    assert mail.cc == [Address("", "carol@example.org"), Address("Dan, D.", "dan@example.org")]
    assert mail.participants() == {"jane@example.org", "bob@example.org",
                                   "carol@example.org", "dan@example.org"}


def test_address_run_into_stray_words_is_still_read() -> None:
    mail = parsed("mailcatcher-breaking.eml")  # Reply-To: support support@someplace.com
    assert mail.reply_to == [Address("", "support@someplace.com")]


def test_corpus_group_only_recipients_give_empty_list() -> None:
    mail = parsed("mimekit-jwz-28.eml")  # To: unlisted-recipients:; (no To-header on input)
    assert mail.to == []
    assert mail.cc == [Address("The Postmaster", "postmaster@mm1.sprynet.com")]


def test_address_header_too_deep_for_getaddresses_keeps_its_addresses() -> None:
    mail = parsed("mimekit-stack-overflow.eml")  # 135 KB To: header, RecursionError upstream
    assert "test@test.com" in {a.addr for a in mail.to}


def test_line_breaks_in_encoded_display_name_are_collapsed() -> None:
    raw = b"From: =?utf-8?q?Evil=0D=0ABcc=3A_x?= <a@b.example>\nSubject: x\n\nbody\n"
    assert parse(raw, RECEIVED).from_ == Address("Evil Bcc: x", "a@b.example")


def test_long_text_line_is_preserved() -> None:
    raw = corpus("mime4j-basic-plain-very-long-lines.eml")
    longest = max(raw.split(b"\n"), key=len).rstrip(b"\r").decode()
    assert len(longest) > 7000 and longest in parsed("mime4j-basic-plain-very-long-lines.eml").text


def test_24kb_base64_line_decodes_into_inline_image() -> None:
    raw = corpus("phpmime-issue115.eml")
    line = max(raw.split(b"\n"), key=len).strip()
    mail = parsed("phpmime-issue115.eml")
    [image] = [a for a in mail.attachments if a.filename == "background.jpg"]
    assert len(line) > 24000 and image.content == base64.b64decode(line)
    assert image.inline and image.content_id == "same1"


def test_inline_cid_image_is_kept_as_attachment() -> None:
    [logo] = parsed("derived-xss-06-related-cid-onerror.eml").attachments
    assert (logo.filename, logo.content_type, logo.content_id, logo.inline) == \
        ("logo.png", "image/png", "logo@example.com", True)


def test_html_only_mail_gets_text_rendering() -> None:
    mail = parsed("derived-xss-06-related-cid-onerror.eml")
    assert mail.html is not None and "<" not in mail.text
    assert mail.text.startswith("Your receipt") and "Hello Jane," in mail.text
    assert mail.snippet.startswith("Your receipt Hello Jane,")


def test_message_rfc822_part_is_attached_as_eml() -> None:
    mail = parsed("derived-xss-09-forwarded-rfc822.eml")
    [forwarded] = mail.attachments
    assert forwarded.content_type == "message/rfc822" and forwarded.filename.endswith(".eml")
    inner = email.message_from_bytes(forwarded.content, policy=policy.default)
    assert inner["subject"] and inner.get_body() is not None


def test_bounce_explained_only_in_preamble_gets_that_text() -> None:
    mail = parsed("mimekit-jwz-28.eml")
    assert "err.nosuchuser" in mail.text
    assert [a.content_type for a in mail.attachments] == \
        ["message/delivery-status", "message/rfc822"]


def test_multipart_with_undeclared_boundary_is_split_at_the_used_one() -> None:
    mail = parsed("rspamd-btc2.eml")
    assert "Content-Type" not in mail.text and mail.html and "bech32" in mail.html
    assert any("undeclared boundary" in d for d in mail.defects)


def test_multipart_without_any_boundary_is_shown_as_text() -> None:
    raw = b"Content-Type: multipart/mixed\n\njust some words\n"
    mail = parse(raw, RECEIVED)
    assert mail.text.strip() == "just some words"


@pytest.mark.parametrize("name, expected", [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\x\\evil.exe", "evil.exe"),
    ("a\x00b\x1bc.txt", "a b c.txt"),
    ("..", None),
    ("=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=", "résumé.pdf"),
])
def test_attachment_filenames_are_sanitised(name: str, expected: str | None) -> None:
    raw = ("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n"
           f"--b\nContent-Type: application/pdf\nContent-Disposition: attachment; "
           f'filename="{name}"\n\nPDF\n--b--\n').encode("utf-8", "surrogateescape")
    [attachment] = parse(raw, RECEIVED).attachments
    assert attachment.filename == (expected or "attachment-1.pdf")


def test_unnamed_attachment_gets_numbered_name_from_its_type() -> None:
    raw = (b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n"
           b"--b\nContent-Type: application/octet-stream\n\n\x00\x01\n--b--\n")
    [attachment] = parse(raw, RECEIVED).attachments
    assert attachment.filename == "attachment-1.bin" and attachment.content == b"\x00\x01"


def test_parse_headers_gives_header_fields_without_body() -> None:
    raw = corpus("nodemailer-nodemailer.eml")
    full, top = parse(raw, RECEIVED), parse_headers(header_section(raw), RECEIVED)
    assert (top.message_id, top.subject, top.from_, top.to, top.date) == \
        (full.message_id, full.subject, full.from_, full.to, full.date)
    assert top.text == "" and top.html is None and top.attachments == []


def test_participants_are_from_to_and_cc_only() -> None:
    raw = b"From: a@x.example\nTo: b@x.example\nCc: c@x.example\nReply-To: d@x.example\n\nhi\n"
    assert parse(raw, RECEIVED).participants() == {"a@x.example", "b@x.example", "c@x.example"}


def test_snippet_collapses_whitespace_and_stops_at_160_chars() -> None:
    mail = parse(b"Subject: s\n\n  hello \n\n\tworld  " + b"word " * 100, RECEIVED)
    assert mail.snippet.startswith("hello world word word")
    assert len(mail.snippet) == parsing.SNIPPET_CHARS


def test_normalise_address_trims_and_lowercases() -> None:
    assert normalise_address("  Jane.Doe@Example.ORG \n") == "jane.doe@example.org"


def test_nul_bytes_never_reach_text() -> None:
    mail = parse(b"Subject: a\x00b\nContent-Type: text/plain; charset=utf-16-le\n\n"
                 + "hi".encode("utf-16-le") + b"\x00\x00", RECEIVED)
    assert mail.subject == "ab" and mail.text == "hi"


def _deep_multipart(depth: int) -> bytes:
    head = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)
                    for i in range(depth))
    return b"Subject: deep\n" + head + b"Content-Type: text/plain\n\ndeep text\n"


GARBAGE = {
    "empty": b"",
    "random-bytes": random.Random(20250101).randbytes(4096),
    "nul-bytes": b"\x00" * 1000,
    "only-newlines": b"\r\n" * 50,
    "no-colon-header": b"this is not a header\n\nbody",
    "truncated-multipart": corpus("nodemailer-nodemailer.eml")[:3000],
    "truncated-base64": corpus("phpmime-issue115.eml")[:10000],
    "deep-nesting": _deep_multipart(300),
    "bad-base64-header": b"Subject: =?utf-8?b?####?= =?bogus?q?x?=\nFrom: =?x?b?@?=\n\n",
    "huge-header": b"To: " + b"a@b.c, " * 20000 + b"\n\nx",
    "bad-rfc2231": b"Content-Type: text/plain; charset*0*=%%%; name*=x'y'%ZZ\n\nbody",
    "binary-in-headers": b"From: \xff\xfe <\x80@\x81>\nDate: \xff\nMessage-ID: <\xc3(>\n\nbody",
}


@pytest.mark.parametrize("raw", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_input_does_not_raise(raw: bytes) -> None:
    mail = parse(raw, RECEIVED)
    assert mail.message_id and mail.date.tzinfo is not None and mail.size == len(raw)
    assert_storable(mail.text)
    headers_only = parse_headers(raw, RECEIVED)
    assert headers_only.message_id and headers_only.attachments == []


def test_nesting_too_deep_for_the_parser_keeps_headers_and_text() -> None:
    mail = parse(_deep_multipart(1000), RECEIVED)
    assert mail.defects[0].startswith("could not be parsed (RecursionError")
    assert mail.subject == "deep" and "deep text" in mail.text


def test_parser_failure_still_gives_a_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args, **kwargs):
        raise RecursionError("too deep")

    monkeypatch.setattr(parsing.BytesParser, "parsebytes", explode)
    mail = parse(b"Subject: x\n\nthe text\n", RECEIVED)
    assert mail.text == "the text\n" and mail.date == RECEIVED
    assert GENERATED_ID_RE.fullmatch(mail.message_id)
    assert mail.defects == ["could not be parsed (RecursionError: too deep)"]


# Headers that take minutes to parse (issue 10.6) ------------------------------------------------

FOLDED_HEADER_BYTES = 100 * 1024
FOLDED_HEADER_BOUND_S = 1.0  # generous: about 10 ms here; the quadratic version took minutes


def folded(size: int, filler: str = " ") -> bytes:
    """A header value of `size` bytes made of folded lines of white space (CRLF + spaces)."""
    line = filler * 70
    return ("x" + "\r\n".join([line] * (size // 72)) + " y").encode()


@pytest.mark.parametrize("header", [
    b"Subject: %s", b"From: %s <ann@example.com>", b'From: "%s" <ann@example.com>', b"To: %s <bo@example.com>",
    b"Subject: =?utf-8?q?x?=%s=?utf-8?q?y?="])
def test_a_100_kb_folded_header_parses_in_linear_time(header):
    raw = b"Message-ID: <slow@example.com>\r\n" + header.replace(b"%s", folded(FOLDED_HEADER_BYTES)) + b"\r\n\r\nbody\r\n"
    started = time.perf_counter()
    mail = parse(raw, RECEIVED)
    elapsed = time.perf_counter() - started
    assert elapsed < FOLDED_HEADER_BOUND_S, f"{elapsed:.2f} s for a {FOLDED_HEADER_BYTES:,}-byte header"
    assert mail.message_id == "slow@example.com" and not any("could not be parsed" in d for d in mail.defects)
    shown = mail.subject or (mail.from_.name if mail.from_ else "") or mail.to[0].name
    assert shown.startswith("x") and shown.endswith("y") and "  " not in shown.replace(" " * 70, "")


@pytest.mark.parametrize("text", ["a \r\n b", "a\r\n\r\nb", "  \r\n  ", "\r\na", "a \t b", "a\u2028\r\nb",
                                  "a\x0b\nb\n", "no break at all", " lead", "trail\n", "a \n b \n\n c", ""])
def test_line_breaks_collapse_as_before_the_linear_rewrite(text):
    quadratic = re.compile(r"\s*[\r\n]+\s*")  # the former expression: the reference for what it does
    assert parsing.headers.collapse_line_breaks(text) == quadratic.sub(" ", text)
