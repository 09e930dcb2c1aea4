"""Mail sync against GNU Mailutils pop3d, a server that takes a message's UIDL from an X-UIDL header
inside it: a sender can give two messages one UIDL, or reuse the real UIDL of an earlier message.
Whatever the UIDLs say, every message becomes exactly one email and none leaves the server unstored."""
import pytest

from models import Email, MailAccount, Security, db
from tests.integration.sync_support import count, emails_of, fresh, ledger, message, owner, poll, raw_contents

MODES = pytest.mark.parametrize("leave", [True, False], ids=["leave", "delete"])


def add_mailutils_account(app, mailutils, user, *, leave: bool) -> tuple[MailAccount, str]:
    login, password = mailutils.new_user()
    account = MailAccount(user_id=user.id, name="Mailutils", email=f"{login}@example.com", host=mailutils.host,
                          port=mailutils.port, security=Security.NONE, username=login,
                          password_encrypted=app.extensions["mail"].box.encrypt(password),
                          leave_on_server=leave, is_default=True)
    db.session.add(account)
    db.session.commit()
    return account, login


def forged(subject: str, uidl: str) -> bytes:
    """A message whose sender wrote its UIDL (X-UIDL) into it."""
    raw = message(subject)
    head, _, body = raw.partition(b"\r\n\r\n")
    return head + f"\r\nX-UIDL: {uidl}".encode() + b"\r\n\r\n" + body


def stored_subjects(account_id: int) -> list[str]:
    fresh()
    return sorted(e.subject for e in emails_of(account_id))


def server_subjects(mailutils, login: str) -> list[str]:
    return sorted(line.split(b": ", 1)[1].decode() for raw in mailutils.bodies(login)
                  for line in raw.split(b"\n") if line.startswith(b"Subject: "))


def assert_once_and_nothing_lost(mailutils, login: str, account_id: int, subjects: list[str], leave: bool) -> None:
    here = stored_subjects(account_id)
    assert here == sorted(subjects)  # every message exactly once
    on_server = server_subjects(mailutils, login)
    assert set(on_server) <= set(here)  # nothing on the server that is not here...
    assert on_server == (sorted(subjects) if leave else [])  # ...and in delete mode nothing is left


@MODES
def test_two_messages_with_one_forged_uidl_are_both_fetched_and_neither_is_deleted_unstored(
        mail_app, mailutils, leave):
    account, login = add_mailutils_account(mail_app, mailutils, owner(), leave=leave)
    mailutils.deliver(login, forged("First twin", "same-uidl"))
    mailutils.deliver(login, forged("Second twin", "same-uidl"))
    mailutils.deliver(login, message("Honest one"))
    first = poll(mail_app, account.id)
    assert first.ok and first.fetched == 3
    assert_once_and_nothing_lost(mailutils, login, account.id, ["First twin", "Second twin", "Honest one"], leave)

    mailutils.deliver(login, forged("Late twin", "same-uidl"))
    second = poll(mail_app, account.id)
    assert second.ok and second.fetched == 1
    assert_once_and_nothing_lost(mailutils, login, account.id,
                                 ["First twin", "Second twin", "Honest one", "Late twin"], leave)
    assert poll(mail_app, account.id).fetched == 0
    assert count(Email, Email.account_id == account.id) == 4


@MODES
def test_a_forged_uidl_equal_to_an_earlier_messages_real_uidl_is_fetched_and_not_deleted_unstored(
        mail_app, mailutils, leave):
    account, login = add_mailutils_account(mail_app, mailutils, owner(), leave=leave)
    mailutils.deliver(login, message("Earlier message"))
    first = poll(mail_app, account.id)
    assert first.ok and first.fetched == 1
    fresh()
    (row,) = ledger(account.id)
    (stored,) = raw_contents(account.id)
    assert b"X-UIDL: " + row.uidl.encode() in stored  # pop3d wrote its real UIDL into the message
    # The earlier message with one letter changed: the same X-UIDL, Message-ID and size.
    impostor = stored.replace(b"Subject: Earlier message", b"Subject: Earlier massage")
    mailutils.deliver(login, impostor)
    second = poll(mail_app, account.id)
    assert second.ok and second.fetched == 1
    assert_once_and_nothing_lost(mailutils, login, account.id, ["Earlier message", "Earlier massage"], leave)
    third = poll(mail_app, account.id)
    assert third.ok and third.fetched == 0
    assert_once_and_nothing_lost(mailutils, login, account.id, ["Earlier message", "Earlier massage"], leave)
