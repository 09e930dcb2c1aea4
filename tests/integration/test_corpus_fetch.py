"""Every message of the real-world corpus through the real POP3 path: fetched, parsed, matched,
and kept byte for byte as the server sent it."""
import poplib
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select

from mail.inbound.parsing import parse
from models import Attachment, Email, RawMessage, db
from tests.conftest import PASSWORD
from tests.integration.sync_support import add_account, emails_of, fresh, lead, links_of, owner, poll

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def served_by(dovecot, login: str) -> list[bytes]:
    """Each message as Dovecot serves it, read with plain poplib: the independent reference."""
    client = poplib.POP3(dovecot.host, dovecot.port, timeout=10)
    client._getline = _long_lines(client)  # the corpus has lines longer than poplib allows
    try:
        client.user(login)
        client.pass_(dovecot.users[login])
        count, _ = client.stat()
        return [b"\r\n".join(client.retr(n)[1]) + b"\r\n" for n in range(1, count + 1)]
    finally:
        client.quit()


def _long_lines(client: poplib.POP3):
    def getline():
        line = client.file.readline()
        if not line:
            raise poplib.error_proto("-ERR EOF")
        return (line[:-2] if line.endswith(b"\r\n") else line.rstrip(b"\n")), len(line)
    return getline


def as_served(raw: bytes) -> bytes:
    """A file as POP3 gives it: every line end CRLF, and the last line ended."""
    text = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return text if text.endswith(b"\r\n") else text + b"\r\n"


def test_every_corpus_message_is_fetched_parsed_matched_and_kept_byte_for_byte(mail_app, dovecot):
    files = sorted(CORPUS.glob("*.eml"))
    assert len(files) > 300
    senders = {}
    for path in files:
        parsed = parse(path.read_bytes(), datetime.now(timezone.utc))
        if parsed.from_ is not None and parsed.from_.addr and "@" in parsed.from_.addr:
            senders.setdefault(parsed.from_.addr, path.name)
    records = {address: lead(address).id for address in sorted(senders)[::3]}  # a third are customers
    account, login = add_account(mail_app, dovecot, owner())
    for path in files:
        dovecot.deliver(login, path.read_bytes())

    result = poll(mail_app, account.id)
    assert (result.fetched, result.errors) == (len(files), [])

    fresh()
    served = served_by(dovecot, login)
    kept = list(db.session.scalars(select(RawMessage.content).join(Email, Email.raw_id == RawMessage.id)
                                   .where(Email.account_id == account.id).order_by(Email.id)))
    assert kept == served  # byte for byte, in the server's order
    assert kept == [as_served(path.read_bytes()) for path in files]
    linked = 0
    for email, path in zip(emails_of(account.id), files):
        expected = {records[email.from_address]} if email.from_address in records else set()
        assert expected <= links_of(email.id), path.name
        linked += bool(expected)
        if email.has_attachments:
            assert db.session.scalar(select(db.func.count()).select_from(Attachment)
                                     .where(Attachment.email_id == email.id)) > 0, path.name
    assert linked >= len(records) and result.linked >= len(records)
    assert poll(mail_app, account.id).fetched == 0  # and all of it recognised the next time

    # ...and every one of them opens on the reading page (and its body document) without an error.
    client = mail_app.test_client()
    client.post("/signin", data={"email": "rep@example.com", "password": PASSWORD})
    for email, path in zip(emails_of(account.id), files):
        page = client.get(f"/email/{email.id}")
        assert page.status_code == 200 and b"Something went wrong" not in page.data, path.name
        if email.html_body:
            body = client.get(f"/email/{email.id}/body")
            assert body.status_code == 200 and b"<script" not in body.data.lower(), path.name
