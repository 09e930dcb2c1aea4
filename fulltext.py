"""What a word is, for full-text search on both databases: one rule, applied here in Python.

A word is a run of letters and digits, compared casefolded and with its accents taken off
("Café" and "cafe" are one word). The text of a row is indexed as its distinct words joined
by single spaces, which each database takes as they are: PostgreSQL as the lexemes of a
tsvector (array_to_tsvector, no parser of its own), SQLite through FTS5's `ascii` tokenizer,
which splits on ASCII spaces and punctuation only and keeps every other character. So both
databases hold exactly the words this module found, and answer a search the same way.

A search matches a row holding every word typed (in any order); the last word matches as a
prefix ("inv" finds "invoice") while it is still being typed, that is unless the search ends
in punctuation ("100%" finds 100, not 1000). Nothing the user types reaches a
query syntax unescaped: a search is built from the words only.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

WORD_MAX_CHARS = 64  # longer words (base64, hashes) are kept cut to this: a prefix still finds them
INDEX_MAX_CHARS = 100_000  # of distinct words a row: far below PostgreSQL's 1 MB for one tsvector
SEARCH_WORDS_MAX = 12  # words of a search that count; more only cost time
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script


def _plain(text: str) -> str:
    """`text` casefolded, compatibility-decomposed, without combining marks (accents)."""
    if text.isascii():  # most mail: the same result, many times faster
        return text.lower()
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(c for c in folded if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The words of `text`, in order, casefolded, accents removed, each cut to WORD_MAX_CHARS."""
    return [word[:WORD_MAX_CHARS] for word in _WORD.findall(_plain(text))]


def index_text(*texts: str | None) -> str:
    """What a row's search index holds: the distinct words of its texts, space-separated, in
    the order first seen, up to INDEX_MAX_CHARS (cut at a word's end)."""
    indexed = " ".join(dict.fromkeys(words(" ".join(text for text in texts if text))))
    if len(indexed) > INDEX_MAX_CHARS:
        indexed = indexed[:indexed.rfind(" ", 0, INDEX_MAX_CHARS + 1)]
    return indexed


@dataclass(frozen=True)
class Search:
    """A search as the words it needs; the last one may be a prefix."""

    words: tuple[str, ...]
    last_is_prefix: bool

    @classmethod
    def parse(cls, q: str) -> Search:
        found = words(q)
        plain = _plain(q)
        typing = bool(plain) and _WORD.match(plain[-1]) is not None and len(found) <= SEARCH_WORDS_MAX
        return cls(tuple(found[:SEARCH_WORDS_MAX]), typing)

    def terms(self) -> list[tuple[str, bool]]:
        """(word, is a prefix) for each word needed."""
        last = len(self.words) - 1
        return [(word, self.last_is_prefix and i == last) for i, word in enumerate(self.words)]

    def tsquery(self) -> str:
        """The search as PostgreSQL tsquery input (lexemes quoted, taken as they are)."""
        return " & ".join("'" + word.replace("\\", "\\\\").replace("'", "''") + "'" + (":*" if prefix else "")
                          for word, prefix in self.terms())

    def fts5(self) -> str:
        """The search as an SQLite FTS5 query (each word a quoted string)."""
        return " AND ".join('"' + word.replace('"', '""') + '"' + ("*" if prefix else "") for word, prefix in self.terms())
