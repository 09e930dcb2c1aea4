"""Leads and Contacts: list with active search, detail, new, edit, delete, convert."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from blueprints.forms import ConfirmForm, RecordForm
from blueprints.web import is_htmx, page_arg, redirect_to, render
from crm import records, users
from mail.org import mail_addon_enabled
from mail.inbound import matching
from mail.reading import addon, conversations, related
from models import RecordKind

bp = Blueprint("records", __name__)

KINDS = {"leads": RecordKind.LEAD, "contacts": RecordKind.CONTACT}
LABELS = {RecordKind.LEAD: ("Lead", "Leads"), RecordKind.CONTACT: ("Contact", "Contacts")}
KIND_PATH = "<any(leads,contacts):kind>"


def get_record_or_404(kind: str, record_id: int):
    """The record of this kind, or a 404."""
    record = records.get(KINDS[kind], record_id)
    if record is None:
        abort(404)
    return record


def _context(kind: str, **extra) -> dict:
    singular, plural = LABELS[KINDS[kind]]
    return {"kind": kind, "singular": singular, "plural": plural, **extra}


@bp.route("/")
@login_required
def home():
    """The start page: the Leads list."""
    return redirect(url_for("records.record_list", kind="leads"))


@bp.route(f"/{KIND_PATH}/")
@login_required
def record_list(kind: str):
    """The list, searched by name, email or company, sorted by a column, all or only mine (with
    each record's Last contacted and Emails, as the viewer sees them); htmx gets only the table."""
    q, mine = request.args.get("q", ""), request.args.get("mine") == "1"
    sort, descending = records.parse_sort(request.args.get("sort"))
    page = records.search(KINDS[kind], q, page_arg(), sort, descending, current_user.id if mine else None)
    mail = (conversations.record_mail(current_user, [r.id for r in page.items]) if mail_addon_enabled() else None)
    params = {"kind": kind} | ({"q": q} if q else {}) | ({"mine": "1"} if mine else {})
    return render("records/list.html", "record_list", **_context(
        kind, q=q, page=page, form=ConfirmForm(), mail=mail, mine=mine, sort=sort, descending=descending,
        params=params))


def page_context(kind: str, record, emails_page: int = 1, **reading) -> dict:
    """Everything the record page shows, its Email related list at `emails_page` included (and
    `reading`: the conversation open at its row): the page and its related-list fragment are
    rendered from this one context."""
    converted_to = records.get(RecordKind.CONTACT, record.converted_contact_id) if record.converted_contact_id else None
    addon_on = mail_addon_enabled()
    emails = related.list_context(current_user, record.id, emails_page) | reading if addon_on else {}
    return _context(kind, record=record, converted_to=converted_to, secondary=records.secondary_address(record),
                    addon_on=addon_on, form=ConfirmForm(), **emails)


@bp.route(f"/{KIND_PATH}/<int:record_id>")
@login_required
def record_detail(kind: str, record_id: int):
    """One record with its Emails related list."""
    record = get_record_or_404(kind, record_id)
    return render("records/detail.html", **page_context(kind, record, page_arg()))


@bp.route(f"/{KIND_PATH}/new", methods=["GET", "POST"])
@login_required
def record_new(kind: str):
    """A new Lead or Contact."""
    return _edit(kind, records.new(KINDS[kind]))


@bp.route(f"/{KIND_PATH}/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def record_edit(kind: str, record_id: int):
    """Edit a Lead or Contact."""
    return _edit(kind, get_record_or_404(kind, record_id))


def _file(saved: records.Saved) -> None:
    """Link the mail that the record's new addresses involve; what this shows of a colleague's
    mail goes into their sharing history (commits)."""
    addon.note_filed(current_user, saved.record.id, matching.file_new_addresses(saved.record.id, saved.added))


def _edit(kind: str, record):
    form = RecordForm(obj=record if record.id else None, owners=users.active_users(),
                      require_company=KINDS[kind] is RecordKind.LEAD)
    if request.method == "GET":
        if record.id is None:
            form.owner_id.data = current_user.id
        else:
            form.secondary_email.data = records.secondary_address(record)
    if form.validate_on_submit():
        is_new = record.id is None
        _file(records.save(record, form.data))
        flash(f"{LABELS[KINDS[kind]][0]} {'created' if is_new else 'saved'}: {record.full_name}.", "success")
        return redirect_to(url_for("records.record_detail", kind=kind, record_id=record.id))
    status = 422 if form.is_submitted() else 200
    return render("records/form.html", "record_form", status=status, **_context(kind, form=form, record=record))


@bp.route(f"/{KIND_PATH}/<int:record_id>/delete", methods=["GET", "POST"])
@login_required
def record_delete(kind: str, record_id: int):
    """GET asks for confirmation (without JavaScript); POST deletes."""
    record = get_record_or_404(kind, record_id)
    form = ConfirmForm()
    if request.method == "GET" or not form.validate_on_submit():
        return render("records/delete.html", **_context(kind, record=record, form=form))
    name = record.full_name
    records.delete(record)
    if is_htmx():
        return "", 200  # the row removes itself (htmx does not swap a 204)
    flash(f"Deleted {name}.", "success")
    return redirect(url_for("records.record_list", kind=kind), 303)


@bp.route("/leads/<int:record_id>/convert", methods=["POST"])
@login_required
def lead_convert(record_id: int):
    """Convert a Lead into a Contact."""
    lead = get_record_or_404("leads", record_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        saved = records.convert(lead, refused=matching.users_addresses_among(records.addresses_of(lead)))
    except ValueError as e:
        flash(str(e), "error")
        return redirect(url_for("records.record_detail", kind="leads", record_id=lead.id), 303)
    _file(saved)
    flash(f"{lead.full_name} is now a Contact.", "success")
    return redirect(url_for("records.record_detail", kind="contacts", record_id=saved.record.id), 303)
