"""The Email tab: the user's own mail by folder and label, reading one message, its sanitised
body, its attachments and its raw bytes.

Every route that takes an email id loads it through mail.reading.sharing (`get_visible`), so a hidden
email answers 404 exactly like a missing one, and the add-on switch guards every route.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from urllib.parse import quote

from flask import Blueprint, abort, g, render_template, request, url_for
from flask_login import current_user

from blueprints.web import is_htmx, mail_addon_required, page_arg, render, safe_local_path
from mail.org import org_zone
from mail.reading.bodies import is_inline_image_type, safe_body
from mail.reading.mailbox import MailView, attachments_of, folder_of, mark_read, side_lists
from mail.reading import addon, conversations
from mail.reading.sharing import get_visible
from models import Attachment, Email, User, db

bp = Blueprint("email", __name__, url_prefix="/email")

# The body document's own policy: no script, no fetch, no form, no <base>; images only as data:
# URIs (inline cid images are embedded so) and from us, plus remote ones when the reader asks.
BODY_CSP = ("default-src 'none'; img-src 'self' data:{remote}; style-src 'unsafe-inline'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
# Downloads are never rendered by us; if a browser renders one anyway, it runs nothing.
DOWNLOAD_CSP = "default-src 'none'; sandbox"
_NOT_FILENAME_SAFE_RE = re.compile(r"[^A-Za-z0-9 ._()+-]+")


# Views -----------------------------------------------------------------------------------------

@bp.route("/")
@mail_addon_required
def inbox():
    """The Email tab: one folder or label of the user's own mail, a row per conversation; htmx
    gets only the list."""
    return _mailbox(MailView.from_args(request.args), "email_list")


@bp.route("/conversations/<int:conversation_id>")
@mail_addon_required
def conversation_read(conversation_id: int):
    """The Email tab with a conversation of the user's own mail open in the reading pane (its URL
    is the page's: Back and Reload keep it); htmx gets the list and the pane. The owner's opening
    marks its messages read. None of the user's own: a 404, exactly like a missing one."""
    reading = conversations.conversation(current_user, conversation_id, own_only=True) or abort(404)
    mark_read(current_user, [m.email for m in reading])
    return _mailbox(MailView.from_args(request.args), "mail_reading", reading=reading,
                    open_conversation=conversation_id, **reader_bodies(reading))


def _mailbox(view: MailView, block: str, **reading):
    page = conversations.mailbox_conversations(current_user, view, page_arg())
    # Active search asks for the list at every pause in typing: the side list is not re-read then.
    side = {} if is_htmx() else side_lists(current_user) | {"notices": addon.notices(current_user)}
    return render("email/inbox.html", block, view=view, page=page, **side, **reading)


@bp.route("/<int:email_id>")
@mail_addon_required
def email_read(email_id: int):
    """Read one message (the owner's opening marks it read); htmx gets only the message."""
    email = visible_or_404(email_id)
    mark_read(current_user, [email])
    context = reading_context(email, current_user, _back_url(email),
                              show_images=request.args.get("images") == "1")
    side = {} if is_htmx() else side_lists(current_user)
    view = MailView(folder=folder_of(email)) if email.owner_id == current_user.id else None
    return render("email/read.html", "email_read", view=view, **context, **side)


@bp.route("/<int:email_id>/body")
@mail_addon_required
def email_body(email_id: int):
    """The sanitised HTML of a message as a document of its own, for the sandboxed iframe."""
    email = visible_or_404(email_id)
    show_images = request.args.get("images") == "1"
    safe, _ = safe_body(email, attachments_of(email), show_images)
    html = render_template("email/body.html", safe=safe, email=email)
    remote = " https: http:" if show_images else ""
    return html, 200, {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": BODY_CSP.format(remote=remote),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-store",
    }


@bp.route("/<int:email_id>/attachments/<int:attachment_id>")
@mail_addon_required
def attachment_download(email_id: int, attachment_id: int):
    """Download an attachment; ?inline=1 shows a raster image in place (for cid: images)."""
    email = visible_or_404(email_id)
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or attachment.email_id != email.id:
        abort(404)
    inline = request.args.get("inline") == "1" and is_inline_image_type(attachment.content_type)
    content_type = attachment.content_type.lower() if inline else "application/octet-stream"
    return download(attachment.content, attachment.filename, content_type, inline=inline)


@bp.route("/<int:email_id>/raw")
@mail_addon_required
def email_raw(email_id: int):
    """The message exactly as it came (or went), byte for byte, as a .eml download."""
    email = visible_or_404(email_id)
    if email.raw is None:
        abort(404)
    return download(email.raw.content, f"email-{email.id}.eml", "message/rfc822")


# HTTP helpers ----------------------------------------------------------------------------------

def visible_or_404(email_id: int) -> Email:
    """The email if the signed-in user may see it; 404 otherwise, exactly as if it did not exist."""
    email = get_visible(current_user, email_id)
    if email is None:
        abort(404)
    return email


def reading_context(email: Email, viewer: User, back_url: str, show_images: bool = False) -> dict:
    """Everything templates/email/_message.html's `message` macro needs (for the record pages too)."""
    attachments = attachments_of(email)
    safe, shown = (safe_body(email, attachments, show_images, attachment_url=_inline_url)
                   if email.html_body else (None, set()))
    return {"email": email, "viewer": viewer, "back_url": back_url, "show_images": show_images,
            "blocked_images": safe.blocked_images if safe else 0,
            "attachments": [a for a in attachments if a.id not in shown]}


def reader_bodies(reading: list) -> dict:
    """For a conversation's reader: per HTML message, how many remote images are blocked and
    which inline images its body shows; ?images=<email id> shows one message's remote images."""
    images = request.args.get("images", type=int)
    bodies = {}
    for m in reading:
        if m.email.html_body:
            safe, shown = safe_body(m.email, m.attachments, m.email.id == images, attachment_url=_inline_url)
            bodies[m.email.id] = (safe.blocked_images, shown)
    return {"bodies": bodies, "images": images}


def _inline_url(attachment: Attachment) -> str:
    return url_for("email.attachment_download", email_id=attachment.email_id, attachment_id=attachment.id, inline=1)


def download(content: bytes, filename: str, content_type: str, inline: bool = False):
    """A response that browsers save (or show, when inline) and never sniff or run."""
    return content, 200, {
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(filename, inline),
        "Content-Security-Policy": DOWNLOAD_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-store",
    }


def content_disposition(filename: str, inline: bool = False) -> str:
    """RFC 6266: an ASCII fallback name, then the real one as RFC 5987 UTF-8."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    ascii_name = " ".join(_NOT_FILENAME_SAFE_RE.sub("_", ascii_name).split()).strip(" ._") or "attachment"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename or ascii_name, safe='')}"


def _back_url(email: Email) -> str:
    """Where "Back" goes: ?back= when it is a path on this site, else the email's folder."""
    folder = MailView(folder=folder_of(email)).params() if email.owner_id == current_user.id else {}
    return safe_local_path(request.args.get("back"), url_for("email.inbox", **folder))


@bp.app_template_filter("mail_date")
def mail_date(when: datetime | None, full: bool = False) -> str:
    """A date in the organisation's time zone: short in lists (time today, day this year)."""
    if when is None:
        return ""
    if "org_zone" not in g:  # once a request: every date on the page
        g.org_zone = org_zone()
    local = when.astimezone(g.org_zone)
    if full:
        return f"{local:%a} {local.day} {local:%b %Y %H:%M}"
    today = datetime.now(local.tzinfo)
    if local.date() == today.date():
        return f"{local:%H:%M}"
    return f"{local.day} {local:%b}" + ("" if local.year == today.year else f" {local.year}")
