"""MIME bodies: every part sorted into body text, body html or attachment, whatever the structure."""
from __future__ import annotations

import io
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value
from functools import lru_cache

from mail.inbound.parsing.charsets import decode_bytes, storable, unescape_8bit
from mail.inbound.parsing.headers import POLICY, decode_encoded_words, header_text

MAX_MIME_DEPTH = 50
FILENAME_MAX_CHARS = 180
HTML_CHARSET_SNIFF_BYTES = 2048

# Re-serialising an enclosed message: compat32 writes the parsed header values back unchanged.
_COPY_POLICIES = {sep: policy.compat32.clone(max_line_length=0, linesep=sep)
                  for sep in ("\n", "\r\n")}
_BOUNDARY_LINE_RE = re.compile(r"^--([ -~]{1,70}?)[ \t]*\r?$", re.MULTILINE)
_CONTENT_TYPE_RE = re.compile(r"[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,127}")
_META_CHARSET_RE = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.I)
_FILENAME_JUNK_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")

_EXTENSIONS = {"message/rfc822": ".eml", "message/global": ".eml", "text/plain": ".txt",
               "message/delivery-status": ".txt", "text/rfc822-headers": ".txt",
               "application/octet-stream": ".bin", "image/jpeg": ".jpg", "text/calendar": ".ics"}

@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    size: int
    content: bytes
    content_id: str | None
    inline: bool


@dataclass
class Body:
    charset: str | None = None  # of the first text part: a hint for raw 8-bit headers
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[ParsedAttachment] = field(default_factory=list)


def walk(msg: Message, raw: bytes, defects: list[str]) -> Body:
    """Sort every MIME part into body text, body html or attachment, depth first, in order."""
    body = Body()
    linesep = "\r\n" if b"\r\n" in raw[:4096] else "\n"
    stack: list[tuple[Message, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        ctype = _content_type(part)
        payload = part.get_payload()
        if ctype.startswith("multipart/") and not isinstance(payload, list):
            payload = _recovered_parts(part, ctype, defects)
        if isinstance(payload, list) and ctype.startswith("multipart/"):
            if depth >= MAX_MIME_DEPTH:
                defects.append(f"MIME parts nested deeper than {MAX_MIME_DEPTH} were skipped")
                continue
            stack.extend((sub, depth + 1) for sub in reversed(payload))
        elif isinstance(payload, list):
            index = len(body.attachments)
            body.attachments.append(_message_attachment(part, ctype, linesep, index))
        else:
            _leaf(part, ctype, body, defects)
        note_parser_defects(part, defects)  # after _leaf: decoding the payload adds some
    return body


def _recovered_parts(part: Message, ctype: str, defects: list[str]) -> str | list[Message]:
    """The parts of a multipart whose declared boundary is unused, split at the one that is.

    Spam declares one boundary and uses another: a first line "--X" followed by MIME headers
    or closed by "--X--" later is taken as the boundary, and that part alone is parsed again.
    Returns the payload unchanged when there is no such line (the part is then shown as text).
    """
    payload = part.get_payload()
    match = _BOUNDARY_LINE_RE.search(payload)
    if match is None or match.group(1) == part.get_boundary():
        return payload
    boundary = match.group(1)
    headers_follow = payload[match.end():match.end() + 10].lstrip().lower()
    if headers_follow.startswith("content-") or f"\n--{boundary}--" in payload:
        head = f'Content-Type: {ctype}; boundary="{boundary}"\n\n'
        raw = head.encode() + payload.encode("utf-8", "surrogateescape")
        rebuilt = BytesParser(policy=POLICY).parsebytes(raw).get_payload()
        if isinstance(rebuilt, list):
            defects.append(f"{ctype} used an undeclared boundary: split at it")
            return rebuilt
    return payload


def _leaf(part: Message, ctype: str, body: Body, defects: list[str]) -> None:
    try:
        data = part.get_payload(decode=True) or b""
    except Exception:  # decoding is lenient, but a payload is attacker-controlled
        defects.append(f"{ctype} part could not be decoded: kept as is")
        data = str(part.get_payload()).encode("utf-8", "surrogateescape")
    disposition = part.get_content_disposition()
    filename = _filename(part, body.charset)
    if ctype.startswith("multipart/"):
        defects.append(f"{ctype} part without usable boundary: shown as text")
        ctype = "text/plain"
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        charset = charset_param(part)
        if charset is None and ctype == "text/html":
            sniffed = _META_CHARSET_RE.search(data[:HTML_CHARSET_SNIFF_BYTES])
            charset = sniffed.group(1).decode("ascii") if sniffed else None
        text, problem = decode_bytes(data, charset)
        body.charset = body.charset or charset
        if problem:
            defects.append(f"{ctype} part: {problem}")
        (body.text if ctype == "text/plain" else body.html).append(text)
        return
    content_id = _content_id(part)
    body.attachments.append(ParsedAttachment(
        filename=filename or _fallback_filename(ctype, len(body.attachments)),
        content_type=ctype, size=len(data), content=data, content_id=content_id,
        inline=disposition == "inline" or (disposition is None and content_id is not None),
    ))


def _message_attachment(part: Message, ctype: str, linesep: str, index: int) -> ParsedAttachment:
    """An enclosed message (message/rfc822, a DSN's status...) re-serialised as bytes."""
    enclosed = part.get_payload()
    is_message = ctype in ("message/rfc822", "message/global") and len(enclosed) == 1
    inner = enclosed[0] if is_message else part
    try:
        buffer = io.BytesIO()
        BytesGenerator(buffer, mangle_from_=False, policy=_COPY_POLICIES[linesep]).flatten(inner)
        content = buffer.getvalue()
    except Exception:  # the generator trips on some broken structures; the mail matters more
        content = b""
    if inner is part:  # drop the part's own header section, keep its body
        content = content.partition((linesep * 2).encode())[2]
    filename = _filename(part)
    if not filename and is_message:
        subject = header_text(inner.get("subject", ""), "Subject", [])
        filename = _safe_filename(subject + ".eml") if subject else None
    return ParsedAttachment(
        filename=filename or _fallback_filename(ctype, index), content_type=ctype,
        size=len(content), content=content, content_id=_content_id(part),
        inline=part.get_content_disposition() == "inline",
    )


def _content_type(part: Message) -> str:
    ctype = part.get_content_type()
    return ctype if _CONTENT_TYPE_RE.fullmatch(ctype) else "application/octet-stream"


def charset_param(part: Message) -> str | None:
    try:
        value = part.get_param("charset")
        charset = collapse_rfc2231_value(value).strip().strip("'\"") if value else ""
        return charset or None
    except Exception:  # a malformed RFC 2231 continuation: as if no charset were given
        return None


def _content_id(part: Message) -> str | None:
    value = part.get("content-id")
    if not value:
        return None
    return storable("".join(unescape_8bit(value).split()).strip("<>")) or None


def _filename(part: Message, charset: str | None = None) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # a malformed RFC 2231 parameter: treat as unnamed
        return None
    if not name:
        return None
    return _safe_filename(decode_encoded_words(unescape_8bit(name, charset)))


def _safe_filename(name: str) -> str | None:
    """The last path segment of `name`, without control characters; None when nothing is left."""
    name = storable(_FILENAME_JUNK_RE.sub(" ", name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(name.split()).strip(". ")
    if len(name) > FILENAME_MAX_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        name = name[:FILENAME_MAX_CHARS - len(keep) - 1].rstrip() + ("." + keep if keep else "")
    return name or None


def _fallback_filename(ctype: str, index: int) -> str:
    return f"attachment-{index + 1}{_extension(ctype)}"


@lru_cache(maxsize=256)
def _extension(ctype: str) -> str:
    return _EXTENSIONS.get(ctype) or mimetypes.guess_extension(ctype) or ".bin"


def note_parser_defects(part: Message, defects: list[str]) -> None:
    for defect in part.defects:
        defects.append(_CAMEL_RE.sub(" ", type(defect).__name__.removesuffix("Defect")).lower())
