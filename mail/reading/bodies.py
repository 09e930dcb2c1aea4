"""A message's HTML body made safe to show, with its inline (cid:) images resolved."""
from __future__ import annotations

import base64
from collections.abc import Callable

from mail.htmlsafe import SafeHtml, sanitise
from models import Attachment, Email

# Inline (cid:) images of these types are shown in the body; the attachment route serves them
# with their own type when asked. Every other download is application/octet-stream.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/gif", "image/jpeg", "image/webp"})
# Larger inline images are listed as attachments instead of being embedded in the body document.
INLINE_IMAGE_MAX_BYTES = 5 * 1024 * 1024


def is_inline_image_type(content_type: str) -> bool:
    return content_type.lower() in INLINE_IMAGE_TYPES


def safe_body(email: Email, attachments: list[Attachment], show_images: bool,
              attachment_url: Callable[[Attachment], str] | None = None) -> tuple[SafeHtml, set[int]]:
    """The email's HTML sanitised; and the ids of the inline images it shows.

    Without `attachment_url` (the body document) a cid: image becomes a data: URI of its
    attachment: the sandboxed iframe has an opaque origin, so browsers send no SameSite session
    cookie with its image requests and a URL of ours would answer "sign in". With it (the
    reading view, which only counts) it becomes that URL.
    """
    by_cid: dict[str, Attachment] = {}
    for attachment in attachments:
        if (attachment.content_id and is_inline_image_type(attachment.content_type)
                and attachment.size <= INLINE_IMAGE_MAX_BYTES):
            by_cid.setdefault(attachment.content_id, attachment)
            by_cid.setdefault(attachment.content_id.lower(), attachment)
    shown: set[int] = set()

    def cid_url(content_id: str) -> str | None:
        attachment = by_cid.get(content_id) or by_cid.get(content_id.lower())
        if attachment is None:
            return None
        shown.add(attachment.id)
        if attachment_url is None:
            return f"data:{attachment.content_type.lower()};base64,{base64.b64encode(attachment.content).decode()}"
        return attachment_url(attachment)

    return sanitise(email.html_body or "", allow_remote_images=show_images, cid_url=cid_url), shown
