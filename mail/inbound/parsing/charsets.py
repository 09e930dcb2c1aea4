"""Charsets: a MIME charset name to a Python codec, and bytes to text with fallbacks that never raise."""
from __future__ import annotations

import codecs
import re
from functools import lru_cache

_CHARSET_NAME_RE = re.compile(r"[A-Za-z0-9._:+-]{1,40}")
_SURROGATES_RE = re.compile(r"[\udc80-\udcff]")
# NUL is refused by PostgreSQL text columns; lone surrogates by every UTF-8 encoder.
_UNSTORABLE_RE = re.compile(r"[\x00\ud800-\udfff]")

# What senders label with the narrow name is, in practice, the wider Windows/WHATWG charset.
_CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "iso8859-1": "cp1252",
    "gb2312": "gb18030", "gbk": "gb18030", "euc-cn": "gb18030", "x-gbk": "gb18030",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "windows-31j": "cp932", "big5": "big5hkscs", "tis-620": "cp874", "windows-874": "cp874",
    "unicode-1-1-utf-7": "utf-7",
}
# Text codecs that turn escapes into characters: no mail body is written in these.
_REFUSED_CODECS = frozenset({"raw-unicode-escape", "unicode-escape", "idna", "punycode",
                             "undefined", "mbcs", "oem"})


@lru_cache(maxsize=256)
def codec_for(charset: str) -> str | None:
    """The Python codec for a MIME charset name, or None when unknown or refused."""
    name = charset.strip().strip("'\"").lower().removeprefix("charset=")
    if not _CHARSET_NAME_RE.fullmatch(name):
        return None
    name = _CHARSET_SUPERSETS.get(name, name)
    for candidate in (name, name.removeprefix("x-"), name.replace("_", "-")):
        try:
            info = codecs.lookup(candidate)
        except LookupError:
            continue
        if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
            return None
        return info.name
    return None


@lru_cache(maxsize=256)
def is_single_byte(codec: str) -> bool:
    """True for 8-bit tables (latin-1, koi8-r, mac-cyrillic...) that map (nearly) every byte."""
    try:
        table = bytes(range(128, 256)).decode(codec, "replace")
    except Exception:  # a stateful or odd codec: not a plain 8-bit table
        return False
    return len(table) == 128 and table.count("\ufffd") <= 16


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode with the declared charset, else UTF-8, else cp1252 with replacements.

    Returns the text and, when the declared charset was not usable, a note saying why.
    """
    codec = codec_for(charset) if charset else None
    problem = None
    if codec and is_single_byte(codec) and not data.isascii():
        # Legacy text is practically never valid UTF-8, while UTF-8 under a legacy label is
        # common (the corpus has it as x-mac-cyrillic): a single-byte codec would "succeed".
        try:
            return data.decode("utf-8"), f"labelled {charset[:40]} but is utf-8"
        except UnicodeDecodeError:
            pass
    if codec:
        try:
            return data.decode(codec), None
        except Exception:  # UnicodeDecodeError, and odd codecs raise others
            problem = f"not valid {charset}"
    elif charset:
        problem = f"unknown charset {charset[:40]!r}"
    try:
        text = data.decode("utf-8")
        return text, problem and f"{problem}: decoded as utf-8"
    except UnicodeDecodeError:
        pass
    if codec and codec not in ("ascii", "utf-8"):
        try:
            return data.decode(codec, "replace"), f"{problem}: undecodable bytes replaced"
        except Exception:  # a stateful codec can fail even with errors="replace"
            pass
    return data.decode("cp1252", "replace"), problem and f"{problem}: decoded as cp1252"


def unescape_8bit(text: str, charset: str | None = None) -> str:
    """Decode the raw 8-bit bytes the parser kept as surrogate escapes (see decode_bytes)."""
    if not _SURROGATES_RE.search(text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"), charset)[0]


def storable(text: str) -> str:
    return _UNSTORABLE_RE.sub("", text)


def has_8bit_escapes(text: str) -> bool:
    """Whether the parser kept raw 8-bit bytes in `text` as surrogate escapes."""
    return _SURROGATES_RE.search(text) is not None
