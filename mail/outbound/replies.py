"""What a Reply or Reply All starts with: recipients, subject, quote and threading headers."""
from __future__ import annotations

from dataclasses import dataclass
from email.utils import getaddresses

from models import Direction, Email

REPLY_PREFIX = "Re: "


@dataclass
class ReplyDraft:
    to: str
    cc: str
    subject: str
    body: str
    in_reply_to: str
    references: str


def reply_draft(original: Email, own_addresses: set[str], *, reply_all: bool, when: str) -> ReplyDraft:
    """The reply to `original` by its viewer, whose own addresses are never among the recipients
    (unless the original went only to them). `when` is the original's date as the viewer reads it."""
    first = original.reply_to_text or (original.from_address if original.direction is Direction.RECEIVED
                                       else original.to_text)
    to = [a for _, a in getaddresses([first]) if a]
    cc = []
    if reply_all:
        cc = [a for _, a in getaddresses([original.to_text, original.cc_text])
              if a and a.lower() not in own_addresses and a not in to]
    subject = original.subject or ""
    quoted = "\n".join("> " + line for line in (original.text_body or "").splitlines())
    return ReplyDraft(
        to=", ".join(a for a in to if a.lower() not in own_addresses) or ", ".join(to),
        cc=", ".join(cc),
        subject=subject if subject.lower().startswith("re:") else REPLY_PREFIX + subject,
        body=f"\n\nOn {when}, {original.from_name or original.from_address} wrote:\n{quoted}",
        in_reply_to=original.message_id if original.message_id.startswith("<") else f"<{original.message_id}>",
        references=original.references,
    )
