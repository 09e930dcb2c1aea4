"""Forms of the CRM's own pages, validated on the server."""
from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms import validators
from wtforms.validators import DataRequired, EqualTo, Optional, Regexp, ValidationError

from crm.users import PASSWORD_MIN_LENGTH, find_user
from mail.inbound.matching import users_addresses_among

PHONE_RE = re.compile(r"^[0-9+()./\- ]*$")
# Every character str.splitlines() breaks at: in a mail header or a log line each starts a new line.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
LINE_BREAK_MESSAGE = "This field cannot contain a line break."
EMAIL_MESSAGE = "Enter an email address like ann@example.com."
# What a field itself refuses (before any validator), in WTForms' words and then in plain ones.
FIELD_WORDS = {"Not a valid integer value.": "Enter a whole number.",
               "Not a valid choice.": "Choose one of the options.",
               "Invalid Choice: could not coerce.": "Choose one of the options.",
               "Invalid choice(s): one or more data inputs could not be coerced.": "Choose one of the options.",
               "This field is required.": "Fill in this field."}


class Length(validators.Length):
    """WTForms' Length in plain words: "At least 8 characters", "At most 200 characters"."""

    def __call__(self, form, field):
        size = len(field.data) if field.data else 0
        if size < self.min:
            raise ValidationError(f"At least {self.min:,} characters")
        if self.max != -1 and size > self.max:
            raise ValidationError(f"At most {self.max:,} characters")


def email_address(message: str = EMAIL_MESSAGE) -> validators.Email:
    """An address's form only (no DNS look-up: the servers may be offline or private)."""
    return validators.Email(message, check_deliverability=False)


class _PlainWords:
    """The translations WTForms asks for its own messages: the plain ones of FIELD_WORDS."""

    def gettext(self, text):
        return FIELD_WORDS.get(text, text)

    def ngettext(self, singular, plural, n):
        return self.gettext(singular if n == 1 else plural)


class HumaneForm(FlaskForm):
    """Every form of the app: WTForms' own messages ("Not a valid integer value.") said plainly."""

    class Meta:
        def get_translations(self, form):
            return _PlainWords()


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def single_line(form, field) -> None:
    """A validator: no line break of any kind (they would split the header the value goes into)."""
    if isinstance(field.data, str) and not LINE_BREAKS.isdisjoint(field.data):
        raise ValidationError(LINE_BREAK_MESSAGE)


class CrmForm(HumaneForm):
    """A form whose one-line text fields all refuse line breaks, with the error beside the field."""

    def validate(self, extra_validators=None) -> bool:
        extra = {name: list(validators) for name, validators in (extra_validators or {}).items()}
        for name, field in self._fields.items():
            if isinstance(field, StringField) and not isinstance(field, (TextAreaField, PasswordField)):
                extra.setdefault(name, []).append(single_line)
        return super().validate(extra)


class SignInForm(CrmForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=254)],
                       filters=[_strip])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])
    remember = BooleanField("Keep me signed in")


class UserForm(CrmForm):
    """A new user (also the first administrator)."""

    name = StringField("Name", validators=[DataRequired("Enter the user's name."), Length(max=120)], filters=[_strip])
    email = EmailField("Email", validators=[DataRequired("Enter the user's email address."), Length(max=254),
                                            email_address()], filters=[_strip])
    password = PasswordField("Password", validators=[DataRequired("Choose a password."),
                                                     Length(min=PASSWORD_MIN_LENGTH, max=200)])
    confirm = PasswordField("Confirm password", validators=[DataRequired("Type the password again."),
                                                            EqualTo("password", "The passwords do not match.")])
    admin = BooleanField("Administrator")

    def validate_email(self, field):
        if find_user(field.data) is not None:
            raise ValidationError("A user with this address already exists.")


class RecordForm(CrmForm):
    """A Lead or a Contact, with the usual CRM field labels."""

    first_name = StringField("First Name", validators=[Optional(), Length(max=80)], filters=[_strip])
    last_name = StringField("Last Name", validators=[DataRequired("Enter the last name."), Length(max=80)],
                            filters=[_strip])
    company = StringField("Company", validators=[Length(max=120)], filters=[_strip])
    email = EmailField("Email", validators=[Optional(), Length(max=254), email_address()],
                       filters=[_strip])
    secondary_email = EmailField("Secondary Email", validators=[Optional(), Length(max=254), email_address()],
                                 filters=[_strip])
    phone = StringField("Phone", validators=[Optional(), Length(max=40),
                                             Regexp(PHONE_RE, message="Use digits, spaces and + ( ) - . / only.")],
                        filters=[_strip])
    owner_id = SelectField("Owner", coerce=int, validators=[DataRequired(message="Choose an owner.")])


    def __init__(self, *args, owners=(), require_company: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner_id.choices = [SelectChoice(u.id, u.name) for u in owners]
        self.require_company = require_company

    def validate_email(self, field):
        _not_a_users_address(field)

    def validate_secondary_email(self, field):
        _not_a_users_address(field)

    def validate_company(self, field):
        # A Lead is a company's person before there is a deal: CRMs ask for the company.
        if self.require_company and not field.data:
            raise ValidationError("A Lead needs a Company.")


def _not_a_users_address(field) -> None:
    # Mail is filed under records by address: a user's own would file (and share) all their mail.
    why = users_addresses_among([field.data or ""])
    if why:
        raise ValidationError(f"{field.data} is {next(iter(why.values()))}: a CRM user's own address is never a "
                              "customer address, so a Lead or Contact cannot have it.")


class ConfirmForm(CrmForm):
    """An empty form: a CSRF token for buttons that post (delete, convert, toggles)."""
