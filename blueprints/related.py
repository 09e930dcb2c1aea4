"""The Email related list on Lead and Contact pages, and its Share Email checkbox."""
from __future__ import annotations

from flask import Blueprint, abort, redirect, request, url_for
from flask_login import current_user

from blueprints.email import reader_bodies
from blueprints.records import KIND_PATH, get_record_or_404, page_context
from blueprints.web import is_htmx, mail_addon_required, page_arg, render
from mail.reading import addon, conversations, related, sharing
from mail.reading.mailbox import mark_read
from models import SharingMode

bp = Blueprint("related", __name__)


@bp.route(f"/{KIND_PATH}/<int:record_id>/emails")
@mail_addon_required
def related_list(kind: str, record_id: int):
    """One page of the record's Email related list: htmx gets the block, anything else (Reload,
    Back, a link opened anew) the whole record page at that page of the list."""
    record = get_record_or_404(kind, record_id)
    return render("records/detail.html", "related_emails", **page_context(kind, record, page_arg()))


@bp.route(f"/{KIND_PATH}/<int:record_id>/emails/<int:conversation_id>")
@mail_addon_required
def related_conversation(kind: str, record_id: int, conversation_id: int):
    """A conversation read at its row of the record's Email related list: htmx gets the list's
    block, anything else (Reload, Back, a link) the whole record page with it open. A conversation
    with nothing the viewer may see here is a 404, exactly like a missing one."""
    record = get_record_or_404(kind, record_id)
    reading = conversations.conversation(current_user, conversation_id, record_id=record.id) or abort(404)
    mark_read(current_user, [m.email for m in reading])
    context = page_context(kind, record, page_arg(), reading=reading, open_conversation=conversation_id,
                           **reader_bodies(reading))
    return render("records/detail.html", "related_emails", **context)


@bp.route(f"/{KIND_PATH}/<int:record_id>/share/effect")
@mail_addon_required
def email_share_effect(kind: str, record_id: int):
    """What ticking (or unticking) Share Email would do, computed only when the user asks: htmx
    gets the sentence, anything else (no JavaScript) the record page saying it."""
    record = get_record_or_404(kind, record_id)
    if sharing.mode_of(current_user.id) is not SharingMode.CUSTOM:
        abort(409, "Share Email is for Custom sharing. Change your mode in Settings > Mail > Mail Add-on.")
    effect = related.share_effect(current_user, record.id)
    if is_htmx():
        return render("records/detail.html", "share_effect", kind=kind, record=record, share_effect=effect,
                      share_email=addon.is_shared(current_user, record.id))
    return render("records/detail.html", **page_context(kind, record, share_effect=effect))


@bp.route(f"/{KIND_PATH}/<int:record_id>/share", methods=["POST"])
@mail_addon_required
def email_share_update(kind: str, record_id: int):
    """Tick or untick Share Email (Custom mode only): shares or unshares my emails with this record."""
    record = get_record_or_404(kind, record_id)
    if sharing.mode_of(current_user.id) is not SharingMode.CUSTOM:
        abort(409, "Share Email is for Custom sharing. Change your mode in Settings > Mail > Mail Add-on.")
    addon.set_share(current_user, record.id, record.full_name, request.form.get("share_email") == "on")
    if not is_htmx():
        return redirect(url_for("records.record_detail", kind=kind, record_id=record.id) + "#emails", 303)
    body, status = render("records/detail.html", "related_emails", **page_context(kind, record))
    return body, status, {"HX-Trigger": "emailShareChanged"}
