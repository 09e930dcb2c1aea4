"""Issue 13.9: no form of the app says WTForms' default words ("This field is required.",
"Field must be between 8 and 200 characters long."): every message is a plain sentence."""
from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import wtforms
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms.fields.core import UnboundField

import blueprints
from blueprints.forms import HumaneForm, Length


def _defaults() -> list[re.Pattern]:
    """WTForms' own messages, read from its source: each as a pattern (placeholders match anything)."""
    source = "".join(p.read_text() for p in Path(wtforms.__file__).parent.rglob("*.py"))
    texts = set(re.findall(r'gettext\(\s*"([^"]+)"', source))
    texts |= {t for pair in re.findall(r'ngettext\(\s*"([^"]+)",\s*"([^"]+)"', source) for t in pair}
    assert "This field is required." in texts and len(texts) > 20  # the scan read the real source
    return [re.compile(".*".join(map(re.escape, re.split(r"%\(\w+\)\w|%s", t)))) for t in texts]


def _form_classes() -> list[type]:
    for module in pkgutil.iter_modules(blueprints.__path__):
        importlib.import_module(f"blueprints.{module.name}")
    found, todo = [], [FlaskForm]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("blueprints."):
            found.append(cls)
    assert len(found) > 15
    return found


def _unbound(cls) -> dict[str, UnboundField]:
    return {name: value for name in dir(cls) if isinstance(value := getattr(cls, name), UnboundField)}


@pytest.mark.parametrize("cls", _form_classes(), ids=lambda c: c.__name__)
def test_every_validator_of_every_form_carries_its_own_words(cls):
    assert issubclass(cls, HumaneForm), f"{cls.__name__} does not derive from HumaneForm"
    for name, field in _unbound(cls).items():
        for validator in field.kwargs.get("validators") or ():
            if isinstance(validator, wtforms.validators.Length):
                assert isinstance(validator, Length), f"{cls.__name__}.{name}: WTForms' own Length"
            elif hasattr(validator, "message"):
                assert validator.message, f"{cls.__name__}.{name}: {type(validator).__name__} without a message"


KWARGS = {"RecordForm": {"owners": ()}, "AddonForm": {"mailboxes": ()}}


@pytest.mark.parametrize("value", ["", "x" * 300_001, "abc", "1"], ids=["empty", "too-long", "word", "short"])
def test_no_form_shows_a_wtforms_default_message(app, make_user, value):
    from flask_login import login_user

    from crm import users

    patterns, user = _defaults(), make_user()
    said = []
    for cls in _form_classes():
        with app.test_request_context(method="POST"):
            users.start_session(user), login_user(user)  # some forms check against the signed-in user (the current password)
            probe = cls(formdata=None, **KWARGS.get(cls.__name__, {}))
            data = MultiDict({f.name: value for f in probe if f.type not in ("CSRFTokenField", "FileField",
                                                                            "MultipleFileField")})
            form = cls(formdata=data, **KWARGS.get(cls.__name__, {}))
            form.validate()
            said += [(cls.__name__, name, e) for name, errors in form.errors.items() for e in errors
                     if isinstance(e, str)]
    assert said, "no form refused anything: the probe is broken"
    wrong = [s for s in said if any(p.fullmatch(s[2]) for p in patterns)]
    assert not wrong, wrong


def test_a_short_password_and_an_empty_email_are_said_plainly(app):
    from blueprints.forms import UserForm

    with app.test_request_context(method="POST"):
        form = UserForm(formdata=MultiDict({"name": "Ann", "email": "", "password": "short", "confirm": "short"}))
        assert not form.validate()
        assert form.password.errors == ["At least 8 characters"]
        assert form.email.errors == ["Enter the user's email address."]
