"""Issue 13.9: the help page's sentences, where the app quotes them, are lightly corrected
("You can reply to others' emails", "customers' emails"), and counts agree with their noun."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The help page's slips the app must not copy: possessives without their apostrophe, "1 emails".
WRONG = re.compile(r"\bothers\s+e-?mails?\b|\bcustomers\s+e-?mails?\b|\b1\s+(e-?mails|recipients|messages)\b",
                   re.IGNORECASE)


def _sources():
    yield from (ROOT / "templates").rglob("*.html")
    yield from (ROOT / "blueprints").glob("*.py")
    yield from (p for p in (ROOT / "mail").rglob("*.py"))


def test_no_template_or_message_copies_the_help_pages_slips():
    found = [f"{path.relative_to(ROOT)}:{n}: {m.group(0)}" for path in _sources()
             for n, line in enumerate(path.read_text().splitlines(), 1) for m in WRONG.finditer(line)]
    assert not found, "\n".join(found)


def test_the_pattern_catches_the_help_pages_own_sentences():
    help_text = Path("/work/shared/seed/mail-addon-help.txt")
    sample = help_text.read_text() if help_text.exists() else "You can reply to others Email"
    assert WRONG.search(sample)
    assert not WRONG.search("You can reply to others' emails; 1 email; 2 recipients")
