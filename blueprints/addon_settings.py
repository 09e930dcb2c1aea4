"""Settings > Mail > Mail Add-on: each user's mailbox, sharing mode and advanced settings."""
from __future__ import annotations

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user
from wtforms import BooleanField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from blueprints.forms import ConfirmForm, HumaneForm, Length
from blueprints.web import is_htmx, mail_addon_required, redirect_to, render
from mail.errors import counted
from mail.inbound import accounts
from mail.reading import addon
from models import ConsolidateAs, SharingMode, domain_for_people

bp = Blueprint("addon_settings", __name__, url_prefix="/settings/mail/addon")
PAGE = "mail_settings/addon.html"
DEFAULT_MAILBOX = "default"
# Where dismissing a notice returns to without JavaScript: the page it was shown on.
NOTICE_BACK = {"email": "email.inbox", "addon": "addon_settings.addon_edit"}


class AddonForm(HumaneForm):
    mailbox = SelectField("Mailbox")
    mode = RadioField("Sharing", choices=[SelectChoice(m.value, m.label) for m in SharingMode],
                      default=SharingMode.PRIVATE.value)
    excluded = StringField("Exclude Domains", validators=[Length(max=1000)])
    consolidate = BooleanField("Consolidate all my customers' emails in a single place")
    consolidate_as = RadioField("Group them in", default=ConsolidateAs.FOLDER.value,
                                choices=[SelectChoice("folder", "Folder (out of the Inbox)"),
                                         SelectChoice("label", "Label (they stay in the Inbox)")])
    consolidate_name = StringField("Folder or label name", validators=[Length(max=80)])

    def __init__(self, *args, mailboxes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.mailbox.choices = [SelectChoice(DEFAULT_MAILBOX, "My default account")] + [
            SelectChoice(str(a.id), f"{a.name} ({a.email})") for a in mailboxes]

    def validate_excluded(self, field):
        # Kept whatever the mode (they act in Public only): a trip through Private loses nothing.
        try:
            self.domains = addon.parse_domains(field.data or "")
        except ValueError as e:
            raise ValidationError(str(e)) from None

    def validate_consolidate_name(self, field):
        if self.consolidate.data and not (field.data or "").strip():
            raise ValidationError("Name the folder or label.")
        if (field.data or "").strip().lower() in ("inbox", "sent", "drafts"):
            raise ValidationError("Choose a name other than Inbox, Sent or Drafts.")

    def choice(self) -> addon.AddonChoice:
        return addon.AddonChoice(
            mailbox_account_id=None if self.mailbox.data == DEFAULT_MAILBOX else int(self.mailbox.data),
            mode=SharingMode(self.mode.data), excluded=self.domains, consolidate=self.consolidate.data,
            consolidate_as=ConsolidateAs(self.consolidate_as.data),
            consolidate_name=(self.consolidate_name.data or "").strip() or "Customers")


def _form(**kwargs) -> AddonForm:
    return AddonForm(mailboxes=accounts.user_accounts(current_user), **kwargs)


def _page(form, effect=None, status=200, notices=()):
    return render(PAGE, "addon_form", status=status, form=form, effect=effect, notices=notices,
                  has_accounts=bool(accounts.user_accounts(current_user)), consolidated=_consolidated())


def _consolidated() -> dict | None:
    """Where the saved consolidation puts customer mail, how many are there, and its Email tab link."""
    saved = addon.current_choice(current_user)
    if not saved.consolidate:
        return None
    kind = saved.consolidate_as.value
    return {"kind": kind, "name": saved.consolidate_name, "count": addon.consolidated_count(current_user),
            "url": url_for("email.inbox", **{kind: saved.consolidate_name})}


@bp.route("/", methods=["GET"])
@mail_addon_required
def addon_edit():
    """The settings as saved (Private for a user who never saved any)."""
    current = addon.current_choice(current_user)
    form = _form(data={"mailbox": str(current.mailbox_account_id or DEFAULT_MAILBOX), "mode": current.mode.value,
                       "excluded": ", ".join(map(domain_for_people, current.excluded)), "consolidate": current.consolidate,
                       "consolidate_as": current.consolidate_as.value, "consolidate_name": current.consolidate_name})
    return _page(form, notices=addon.notices(current_user))


@bp.route("/preview", methods=["POST"])
@mail_addon_required
def addon_preview():
    """The form again for what is chosen (the mode's explanation), and what saving would do."""
    form = _form()
    if not form.validate():
        return _page(form, status=422)
    return _page(form, addon.preview(current_user, form.choice()))


@bp.route("/", methods=["POST"])
@mail_addon_required
def addon_save():
    """Save; the change and its effect go into the user's sharing history."""
    form = _form()
    if not form.validate():
        return _page(form, status=422)
    effect = addon.save(current_user, form.choice())
    place = _consolidated()
    filed = (f" {counted(place['count'], 'customer email')} {'is' if place['count'] == 1 else 'are'} in the "
             f"{place['kind']} “{place['name']}” in the Email tab." if place else "")
    flash("Mail Add-on settings saved. " + effect.sentence() + filed, "success")
    return redirect_to(url_for("addon_settings.addon_edit"))


@bp.route("/history")
@mail_addon_required
def addon_history():
    """My record of every change to who can see my email."""
    return render("mail_settings/addon_history.html", changes=addon.history(current_user))


@bp.route("/notices/<int:change_id>/dismiss", methods=["POST"])
@mail_addon_required
def notice_dismiss(change_id: int):
    """I have seen what a colleague's record change showed of my email: the notice goes."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    addon.dismiss_notice(current_user, change_id)
    if is_htmx():
        return "", 200  # the notice removes itself
    back = NOTICE_BACK.get(request.form.get("back", ""), "addon_settings.addon_edit")
    return redirect_to(url_for(back))
