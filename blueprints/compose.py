"""Send Email from a Lead or Contact, and Reply / Reply All to any email the viewer may see."""
from __future__ import annotations

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user
from wtforms import MultipleFileField, StringField, TextAreaField
from wtforms.validators import DataRequired, ValidationError

from blueprints.email import mail_date
from blueprints.forms import CrmForm, Length
from blueprints.mail_glue import mail_context
from blueprints.web import is_htmx, mail_addon_required, redirect_to, render, safe_local_path
from crm import records
from mail.errors import counted
from mail.inbound import matching
from mail.outbound import outbox, replies
from mail.reading import sharing
from models import RecordKind

bp = Blueprint("compose", __name__, url_prefix="/compose")
PAGE = "compose/compose.html"
MAX_ATTACHMENTS_BYTES = 20 * 1024 * 1024
# Asked before an email goes out with one of them empty; the answer is a second submit.
BLANK_QUESTIONS = {"subject": "Send without a subject?", "body": "Send an empty message?"}


class ComposeForm(CrmForm):  # one-line fields refuse line breaks: headers
    to = StringField("To", validators=[DataRequired("Add at least one recipient."), Length(max=5000)])
    cc = StringField("Cc", validators=[Length(max=5000)])
    bcc = StringField("Bcc", validators=[Length(max=5000)])
    subject = StringField("Subject", validators=[Length(max=500)])
    body = TextAreaField("Message", validators=[Length(max=200_000)])
    attachments = MultipleFileField("Attachments")
    in_reply_to = StringField()
    references = StringField()
    # "subject" or "body": the sender confirmed sending without it. Sent only by the question's
    # button, never rendered as a hidden field (an empty one before it would win: the first value).
    send_blank = StringField()

    def blank_question(self) -> str:
        """The question to ask before sending without a subject or a message ("" when none is due
        or the sender already said yes). Both empty is a field error instead (see validate)."""
        blank = "subject" if not (self.subject.data or "").strip() else "body" if not (self.body.data or "").strip() else ""
        if not blank or self.send_blank.data == blank:
            return ""
        return BLANK_QUESTIONS[blank]

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if not (self.subject.data or "").strip() and not (self.body.data or "").strip():
            self.subject.errors = [*self.subject.errors, "Add a subject or a message: both are empty."]
            self.body.errors = [*self.body.errors, "Write a message, or add a subject to send a short note."]
            return False
        return ok

    def _addresses(self, field):
        try:
            field.addresses = outbox.parse_recipients(field.data or "")
        except ValueError as e:
            raise ValidationError(str(e)) from None

    validate_to = validate_cc = validate_bcc = _addresses

    def outgoing(self) -> outbox.Outgoing:
        files = [f for f in (self.attachments.data or []) if getattr(f, "filename", "")]
        return outbox.Outgoing(
            to=self.to.addresses, cc=self.cc.addresses, bcc=self.bcc.addresses, subject=self.subject.data or "",
            body=self.body.data or "", in_reply_to=self.in_reply_to.data or "",
            references=(self.references.data or "").split(),
            attachments=[(f.filename, f.mimetype or "application/octet-stream", f.read()) for f in files])


def _page(form, back_url: str, status: int = 200, error: str = "", question: str = ""):
    identity, why = outbox.sending_identity(current_user)
    fix_url = (url_for("mail_settings.account_new") if outbox.crm_mailbox(current_user) is None
               else url_for("send_as.identity_list"))
    return render(PAGE, "compose_form", status=status, form=form, identity=identity, why=why, error=error,
                  fix_url=fix_url, remaining=outbox.remaining_today(), back_url=back_url, question=question,
                  files_kept=is_htmx())


def _send(form, back_url: str):
    if not form.validate():
        return _page(form, back_url, 422)
    if question := form.blank_question():  # nothing is sent until the sender answers
        return _page(form, back_url, 422, question=question)
    if request.content_length and request.content_length > MAX_ATTACHMENTS_BYTES:
        return _page(form, back_url, 422, "The attachments are too large: at most 20 MB in all.")
    try:
        sent = outbox.send(mail_context(), current_user, form.outgoing())
    except outbox.SendError as e:
        kept = " It is kept in Drafts." if e.email is not None else ""
        return _page(form, back_url, 422, str(e) + kept)
    flash(f"Sent “{sent.subject or '(no subject)'}” to {counted(sent.recipient_count, 'recipient')}.", "success")
    return redirect_to(back_url)


@bp.route("/<any(leads,contacts):kind>/<int:record_id>", methods=["GET", "POST"])
@mail_addon_required
def record_compose(kind: str, record_id: int):
    """Send Email from a Lead or Contact page, to its address."""
    record = records.get(RecordKind.LEAD if kind == "leads" else RecordKind.CONTACT, record_id) or abort(404)
    back_url = url_for("records.record_detail", kind=kind, record_id=record.id)
    form = ComposeForm()
    if request.method == "GET":
        form.to.data = record.email
        return _page(form, back_url)
    return _send(form, back_url)


@bp.route("/reply/<int:email_id>", methods=["GET", "POST"])
@mail_addon_required
def reply(email_id: int):
    """Reply (or Reply All with ?all=1) to an email the viewer may see; others' emails too."""
    original = sharing.get_visible(current_user, email_id) or abort(404)
    back_url = safe_local_path(request.args.get("back"), url_for("email.email_read", email_id=original.id))
    form = ComposeForm()
    if request.method == "GET":
        _fill_reply(form, original, reply_all=request.args.get("all") == "1")
        return _page(form, back_url)
    return _send(form, back_url)


def _fill_reply(form: ComposeForm, original, reply_all: bool) -> None:
    draft = replies.reply_draft(original, matching.owner_addresses(current_user), reply_all=reply_all,
                                when=mail_date(original.date, full=True))
    for name in ("to", "cc", "subject", "body", "in_reply_to", "references"):
        form[name].data = getattr(draft, name)
