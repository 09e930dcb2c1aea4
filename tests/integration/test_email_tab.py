"""The Email tab: the user's own mail listed, read, its body isolated, attachments and raw downloaded.

Every test runs on SQLite and PostgreSQL (the `rep` fixture stands on `app`).
"""
from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from mail.reading import bodies
from crm import users
from mail.org import set_mail_addon_enabled
from models import AddonSettings, Attachment, Direction, Lead, SendState, SharingMode, db
from tests.conftest import PASSWORD
from tests.mail_factory import CORPUS, make_email, store_corpus

HTMX = {"HX-Request": "true"}
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
STRICT_BODY_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; "
                   "form-action 'none'; frame-ancestors 'self'")
XSS_CORPUS = sorted(p.name for p in CORPUS.glob("derived-xss-*.eml"))


def text(response) -> str:
    return response.get_data(as_text=True)


def subjects(response) -> list[str]:
    """The subjects in the list (one row per conversation), top to bottom."""
    return re.findall(r'<td class="what">\s*(?:<span class="visually-hidden">Unread: </span>)?<a [^>]*>([^<]*)</a>',
                      text(response))


@pytest.fixture
def colleague(rep):
    return users.create_user("colleague@example.com", "Carl Colleague", PASSWORD)


def signed_in(app, user):
    client = app.test_client()
    client.post("/signin", data={"email": user.email, "password": PASSWORD})
    return client


# The list -------------------------------------------------------------------------------------

def test_email_tab_lists_only_own_mail_newest_first(rep, colleague):
    user, client = rep
    make_email(user, subject="Oldest", minutes=0)
    make_email(user, subject="Newest", minutes=20)
    make_email(user, subject="Middle", minutes=10)
    make_email(user, subject="Same minute, stored later", minutes=10)
    make_email(colleague, subject="Colleague's own mail", minutes=30)
    response = client.get("/email/")
    assert response.status_code == 200
    # Four subjects: four conversations, one row each.
    assert subjects(response) == ["Newest", "Same minute, stored later", "Middle", "Oldest"]


def test_list_is_paginated_25_a_page(rep):
    user, client = rep
    for n in range(30):
        make_email(user, subject=f"Message {n:02}", minutes=n)
    first = client.get("/email/")
    assert subjects(first) == [f"Message {n:02}" for n in range(29, 4, -1)]
    assert "Page 1<" in text(first) and "Next" in text(first)
    second = client.get("/email/?page=2")
    assert subjects(second) == [f"Message {n:02}" for n in range(4, -1, -1)]
    assert "Page 2<" in text(second) and "Previous" in text(second) and "Next" not in text(second)


def test_folders_beside_the_list_and_filter_it(rep):
    user, client = rep
    make_email(user, subject="In the inbox")
    make_email(user, subject="To a customer", folder="Customers")
    make_email(user, subject="A reply I sent", folder="Sent", direction=Direction.SENT)
    page = text(client.get("/email/"))
    side = page[page.index('class="mail-side"'):page.index('id="email-list"')]
    assert re.findall(r"<span>([^<]+)</span>", side) == ["Inbox", "Sent", "Customers"]  # no Drafts: none
    assert subjects(client.get("/email/")) == ["In the inbox"]
    assert subjects(client.get("/email/?folder=Customers")) == ["To a customer"]
    sent = client.get("/email/?folder=Sent")
    assert subjects(sent) == ["A reply I sent"] and "To:</span> Rita Rep &lt;rep@example.com&gt;" in text(sent)


def test_unsent_drafts_have_a_folder_of_their_own(rep):
    user, client = rep
    make_email(user, subject="Sent fine", folder="Sent", direction=Direction.SENT)
    make_email(user, subject="Refused by the server", folder="Sent", direction=Direction.SENT,
               send_state=SendState.DRAFT)
    assert ">Drafts<" in text(client.get("/email/"))
    assert subjects(client.get("/email/?folder=Sent")) == ["Sent fine"]
    assert subjects(client.get("/email/?folder=Drafts")) == ["Refused by the server"]


def test_labels_listed_and_filter_across_folders(rep):
    user, client = rep
    make_email(user, subject="Customer mail", label="Customers", minutes=1)
    make_email(user, subject="Customer reply", label="Customers", folder="Sent", direction=Direction.SENT)
    make_email(user, subject="Newsletter")
    page = text(client.get("/email/"))
    assert 'href="/email/?label=Customers"' in page
    assert subjects(client.get("/email/?label=Customers")) == ["Customer mail", "Customer reply"]


def test_unread_mail_is_bold_and_can_be_filtered(rep):
    user, client = rep
    make_email(user, subject="Read already", is_read=True, minutes=1)
    make_email(user, subject="Not read yet")
    page = text(client.get("/email/"))
    assert re.search(r'<tr class="unread"[^>]*>\s*<td class="who">Olivia Bennett</td>\s*<td class="what">\s*'
                     r'<span class="visually-hidden">Unread: </span><a [^>]*>Not read yet', page)
    assert '<tr class="read"' in page
    assert subjects(client.get("/email/?unread=1")) == ["Not read yet"]
    assert '<span class="count" title="1 unread">' in page


@pytest.mark.parametrize("q", ["INVOICE", "olivia bennett", "brightwater.EXAMPLE", "carl@", "the attached figures"])
def test_search_via_htmx_returns_only_the_list_block(rep, q):
    user, client = rep
    make_email(user, subject="Invoice for March", to="Carl <carl@acme.example>",
               text="Please see the attached figures.")
    make_email(user, subject="Lunch?", sender=("Kenji", "kenji@sakura.example"), text="Noodles at noon.")
    response = client.get(f"/email/?q={quote(q)}", headers=HTMX)
    fragment = text(response)
    assert fragment.lstrip().startswith('<section id="email-list"') and "<html" not in fragment
    assert "mail-side" not in fragment
    assert subjects(response) == ["Invoice for March"]
    assert "HX-Request" in response.headers["Vary"]
    full = client.get(f"/email/?q={quote(q)}")
    assert "<html" in text(full) and subjects(full) == ["Invoice for March"]


def test_search_keeps_the_folder_and_escapes_wildcards(rep):
    user, client = rep
    make_email(user, subject="Target 100% reached", folder="Customers")
    make_email(user, subject="Target 1000 reached", folder="Customers")
    make_email(user, subject="Target 100% reached in the inbox")
    assert subjects(client.get("/email/?folder=Customers&q=100%25", headers=HTMX)) == ["Target 100% reached"]
    assert subjects(client.get("/email/?folder=Customers&q=1_0", headers=HTMX)) == []
    page = text(client.get("/email/?folder=Customers"))
    assert '<input type="hidden" name="folder" value="Customers">' in page
    assert 'hx-trigger="input changed delay:200ms, search"' in page and 'hx-push-url="true"' in page


def test_empty_inbox_says_how_mail_gets_here(rep):
    _, client = rep
    page = text(client.get("/email/"))
    assert "No emails yet. Add a POP3 account in" in page and "Settings &gt; Mail &gt; Mail Accounts</a>" in page
    assert "Nothing in Sent yet." in text(client.get("/email/?folder=Sent"))


# Reading --------------------------------------------------------------------------------------

def test_reading_shows_headers_and_text_and_marks_read(rep):
    user, client = rep
    email = make_email(user, subject="Quarterly figures", cc="Carl <carl@acme.example>", text="Line one\nLine two")
    response = client.get(f"/email/{email.id}")
    page = text(response)
    assert response.status_code == 200
    for expected in ("Quarterly figures", "Olivia Bennett", "olivia@brightwater.example", "rep@example.com",
                     "carl@acme.example", "Mon 3 Mar 2025 09:30", "Line one\nLine two"):
        assert expected in page
    assert ">Owner<" not in page  # the viewer is the owner
    assert f'href="/compose/reply/{email.id}?back=/email/{email.id}"' in page
    assert f'href="/compose/reply/{email.id}?all=1&amp;back=/email/{email.id}"' in page
    db.session.refresh(email)
    assert email.is_read


def test_reading_view_is_a_block_for_htmx(rep):
    user, client = rep
    email = make_email(user, html="<p>Hi</p>")
    fragment = text(client.get(f"/email/{email.id}?back=/leads/7", headers=HTMX))
    assert fragment.lstrip().startswith('<article id="email-read"') and "<html" not in fragment
    assert 'href="/leads/7"' in fragment


def test_back_goes_only_to_a_path_on_this_site(rep):
    user, client = rep
    email = make_email(user)
    for back in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        page = text(client.get(f"/email/{email.id}", query_string={"back": back}))
        assert "evil" not in page and "javascript:" not in page


def test_html_mail_is_shown_in_a_sandboxed_iframe_and_its_script_is_gone(rep):
    user, client = rep
    email = make_email(user, html='<p>Hello</p><script>window.pwned=1</script><img src="x" onerror="alert(1)">'
                                   '<a href="javascript:alert(2)">click</a>')
    page = text(client.get(f"/email/{email.id}"))
    iframe = re.search(r"<iframe[^>]*>", page).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in iframe
    assert "allow-scripts" not in page and "allow-same-origin" not in page
    assert f'src="/email/{email.id}/body"' in iframe and 'referrerpolicy="no-referrer"' in iframe
    body = client.get(f"/email/{email.id}/body")
    assert body.status_code == 200 and body.mimetype == "text/html"
    document = text(body)
    assert "<p>Hello</p>" in document
    assert "<script" not in document and "pwned" not in document and "onerror" not in document
    assert "javascript:" not in document
    assert body.headers["Content-Security-Policy"] == STRICT_BODY_CSP
    assert body.headers["X-Content-Type-Options"] == "nosniff"
    assert body.headers["Referrer-Policy"] == "no-referrer"


def test_remote_images_are_blocked_until_the_reader_asks_for_this_view_only(rep):
    user, client = rep
    email = make_email(user, html='<p>News</p><img src="https://tracker.example/open.png?u=1">'
                                   '<img src="http://cdn.example/a.png">')
    page = text(client.get(f"/email/{email.id}"))
    assert "2 remote images blocked" in page
    assert f'href="/email/{email.id}?images=1&amp;back=' in page and 'hx-target="#email-read"' in page
    body = client.get(f"/email/{email.id}/body")
    assert "tracker.example" not in text(body) and "cdn.example" not in text(body)
    assert body.headers["Content-Security-Policy"] == STRICT_BODY_CSP

    shown = text(client.get(f"/email/{email.id}?images=1", headers=HTMX))
    assert "remote images blocked" not in shown and f'src="/email/{email.id}/body?images=1"' in shown
    body = client.get(f"/email/{email.id}/body?images=1")
    assert 'src="https://tracker.example/open.png?u=1"' in text(body)
    assert "img-src 'self' data: https: http:;" in body.headers["Content-Security-Policy"]
    assert "2 remote images blocked" in text(client.get(f"/email/{email.id}"))  # not remembered


def test_cid_inline_image_is_embedded_in_the_body_and_not_listed(rep):
    user, client = rep
    email = make_email(user, html='<p>Logo:</p><img src="cid:logo@brightwater"><img src="cid:unknown@x">',
                       inline_images=(("logo@brightwater", "image/png", PNG),),
                       attachments=(("terms.pdf", "application/pdf", b"%PDF-1.4 terms"),))
    logo = db.session.scalar(db.select(Attachment).where(Attachment.email_id == email.id,
                                                         Attachment.content_id == "logo@brightwater"))
    document = text(client.get(f"/email/{email.id}/body"))
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in document
    assert "cid:" not in document
    page = text(client.get(f"/email/{email.id}"))
    assert "terms.pdf" in page and f"/attachments/{logo.id}\"" not in page  # shown in the body, not listed
    image = client.get(f"/email/{email.id}/attachments/{logo.id}?inline=1")  # opened on its own
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data == PNG
    assert image.headers["Content-Disposition"].startswith("inline;")
    assert image.headers["X-Content-Type-Options"] == "nosniff"


def test_an_inline_image_too_large_to_embed_is_listed_instead(rep, monkeypatch):
    user, client = rep
    monkeypatch.setattr(bodies, "INLINE_IMAGE_MAX_BYTES", len(PNG) - 1)
    email = make_email(user, html='<img src="cid:logo@brightwater">',
                       inline_images=(("logo@brightwater", "image/png", PNG),))
    assert "data:image/png" not in text(client.get(f"/email/{email.id}/body"))
    logo = db.session.scalar(db.select(Attachment).where(Attachment.email_id == email.id))
    assert f'href="/email/{email.id}/attachments/{logo.id}" download>{logo.filename}<' in text(client.get(f"/email/{email.id}"))


@pytest.mark.parametrize("filename,content_type", [
    ("figures.pdf", "application/pdf"),
    ("page.html", "text/html"),
    ("logo.svg", "image/svg+xml"),
    ("feed.xml", "application/xml"),
    ("run.js", "application/javascript"),
    ("Résumé – Zoë 2025.txt", "text/plain"),
])
def test_attachment_download_is_never_rendered(rep, filename, content_type):
    user, client = rep
    data = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>" if "svg" in content_type else b"content\x00"
    email = make_email(user, attachments=((filename, content_type, data),))
    attachment = db.session.scalar(db.select(Attachment).where(Attachment.email_id == email.id))
    for suffix in ("", "?inline=1"):  # inline=1 shows only raster images in place
        response = client.get(f"/email/{email.id}/attachments/{attachment.id}{suffix}")
        assert response.status_code == 200 and response.data == data
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith('attachment; filename="')
        assert disposition.endswith("; filename*=UTF-8''" + quote(filename, safe=""))
        fallback = re.match(r'attachment; filename="([^"]*)"', disposition).group(1)
        assert fallback.isascii() and fallback and "/" not in fallback
        if not filename.isascii():
            assert fallback == "Resume Zoe 2025.txt"


def test_attachment_must_belong_to_the_email_in_the_url(rep):
    user, client = rep
    first = make_email(user, attachments=(("a.pdf", "application/pdf", b"A"),))
    second = make_email(user, subject="Other")
    attachment = db.session.scalar(db.select(Attachment).where(Attachment.email_id == first.id))
    assert client.get(f"/email/{second.id}/attachments/{attachment.id}").status_code == 404
    assert client.get(f"/email/{first.id}/attachments/{attachment.id}").status_code == 200


@pytest.mark.parametrize("name", ["flanker-attached-pdf.eml", "derived-xss-19-utf7-charset.eml",
                                  "enmime-low-quality_bad-header-wrap.eml"])
def test_raw_download_is_the_message_byte_for_byte(rep, name):
    user, client = rep
    email = store_corpus(user, name)
    response = client.get(f"/email/{email.id}/raw")
    assert response.status_code == 200 and response.data == (CORPUS / name).read_bytes()
    assert response.headers["Content-Type"] == "message/rfc822"
    assert response.headers["Content-Disposition"].startswith(f'attachment; filename="email-{email.id}.eml"')
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# Who may see it -------------------------------------------------------------------------------

def _normalised(response) -> tuple[int, str]:
    # The page carries a fresh CSRF token (timestamped): the only part allowed to differ.
    page = re.sub(r'"X-CSRFToken": "[^"]*"', "", text(response))
    return response.status_code, re.sub(r'name="csrf_token" value="[^"]*"', "", page)


@pytest.mark.parametrize("path", ["/email/{id}", "/email/{id}/body", "/email/{id}/attachments/{att}",
                                  "/email/{id}/attachments/{att}?inline=1", "/email/{id}/raw", "/email/{id}?images=1"])
@pytest.mark.parametrize("htmx", [False, True])
def test_another_users_private_email_answers_exactly_like_a_missing_one(rep, colleague, path, htmx):
    _, client = rep
    private = make_email(colleague, subject="Salary talks", inline_images=(("i@x", "image/png", PNG),),
                         html='<img src="cid:i@x">')
    att = db.session.scalar(db.select(Attachment.id).where(Attachment.email_id == private.id))
    headers = HTMX if htmx else {}
    hidden = client.get(path.format(id=private.id, att=att), headers=headers)
    missing = client.get(path.format(id=private.id + 1000, att=att + 1000), headers=headers)
    assert hidden.status_code == 404
    assert _normalised(hidden) == _normalised(missing)
    assert "Salary" not in text(hidden)


def test_an_administrator_cannot_read_a_private_email_either(rep, mail_app):
    user, _ = rep
    email = make_email(user, subject="Private")
    admin = signed_in(mail_app, users.find_user("admin@example.com"))
    assert admin.get(f"/email/{email.id}").status_code == 404


def test_a_shared_email_is_readable_by_a_colleague_but_not_in_their_tab(rep, colleague, mail_app):
    user, _ = rep
    lead = Lead(last_name="Bennett", company="Brightwater", owner_id=user.id)
    db.session.add_all([lead, AddonSettings(user_id=user.id, sharing_mode=SharingMode.PUBLIC)])
    db.session.flush()
    email = make_email(user, subject="Proposal", record_ids=(lead.id,), html="<p>Proposal</p>",
                       attachments=(("p.pdf", "application/pdf", b"%PDF"),))
    att = db.session.scalar(db.select(Attachment.id).where(Attachment.email_id == email.id))
    client = signed_in(mail_app, colleague)
    page = text(client.get(f"/email/{email.id}"))
    assert "Proposal" in page and ">Owner<" in page and "Rita Rep" in page
    for path in ("body", f"attachments/{att}", "raw"):
        assert client.get(f"/email/{email.id}/{path}").status_code == 200
    db.session.refresh(email)
    assert not email.is_read  # only the owner's reading marks it read
    assert "Proposal" not in text(client.get("/email/"))  # the tab is the viewer's own mail
    db.session.get(AddonSettings, user.id).sharing_mode = SharingMode.PRIVATE
    assert client.get(f"/email/{email.id}").status_code == 404  # computed at read time


@pytest.mark.parametrize("path", ["/email/", "/email/?q=x", "/email/{id}", "/email/{id}/body",
                                  "/email/{id}/attachments/{att}", "/email/{id}/raw"])
def test_every_route_is_403_while_the_addon_is_disabled(rep, path):
    user, client = rep
    email = make_email(user, attachments=(("a.pdf", "application/pdf", b"A"),))
    att = db.session.scalar(db.select(Attachment.id).where(Attachment.email_id == email.id))
    set_mail_addon_enabled(False)
    response = client.get(path.format(id=email.id, att=att))
    assert response.status_code == 403 and "The Mail Add-on is not enabled" in text(response)


def test_signed_out_visitors_are_sent_to_sign_in(rep, mail_app):
    user, _ = rep
    email = make_email(user)
    response = mail_app.test_client().get(f"/email/{email.id}/raw")
    assert response.status_code == 302 and "/signin" in response.location


# Hostile mail ---------------------------------------------------------------------------------

class ActiveContent(HTMLParser):
    """Collects whatever in a document could run: script elements, on* handlers, script URLs."""

    URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "poster", "background", "xlink:href"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.found.append(f"<script {attrs}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}={value!r}")
            squashed = re.sub(r"[\x00-\x20]", "", value or "").lower()
            if name in self.URL_ATTRIBUTES and squashed.startswith(("javascript:", "vbscript:", "data:text")):
                self.found.append(f"{tag} {name}={value!r}")

    handle_startendtag = handle_starttag


def active_content(html: str) -> ActiveContent:
    parser = ActiveContent()
    parser.feed(html)
    parser.close()
    return parser


@pytest.mark.parametrize("name", XSS_CORPUS)
def test_hostile_corpus_mail_renders_without_anything_that_runs(rep, name):
    user, client = rep
    email = store_corpus(user, name)
    fragment = client.get(f"/email/{email.id}", headers=HTMX)
    assert fragment.status_code == 200
    found = active_content(text(fragment))
    assert found.found == []
    assert [tag for tag, _ in found.tags if tag in ("iframe", "object", "embed", "form", "base", "meta")] == \
        (["iframe"] if email.html_body else [])
    page = active_content(text(client.get(f"/email/{email.id}")))
    assert [attrs.get("src") for tag, attrs in page.tags if tag == "script"] == [
        "/static/js/htmx-2.0.11.min.js", "/static/js/reader.js", "/static/js/keep-focus.js"]  # the app's own only
    assert [f for f in page.found if not f.startswith("<script")] == []
    body = client.get(f"/email/{email.id}/body")
    assert body.status_code == 200 and body.headers["Content-Security-Policy"] == STRICT_BODY_CSP
    document = active_content(text(body))
    assert document.found == []
    tags = [tag for tag, _ in document.tags]
    assert not set(tags) & {"iframe", "object", "embed", "form", "base", "link", "svg", "math", "input", "button",
                            "textarea", "frame", "applet"}
    assert tags.count("style") == 1  # ours, in the head
    metas = [attrs for tag, attrs in document.tags if tag == "meta"]
    assert metas == [{"charset": "utf-8"}, {"name": "referrer", "content": "no-referrer"},
                     {"name": "color-scheme", "content": "light"}]


def test_every_corpus_attachment_downloads_as_octet_stream(rep):
    user, client = rep
    email = store_corpus(user, "derived-xss-08-svg-attachment.eml")
    attachments = db.session.scalars(db.select(Attachment).where(Attachment.email_id == email.id)).all()
    assert attachments
    for attachment in attachments:
        response = client.get(f"/email/{email.id}/attachments/{attachment.id}?inline=1")
        assert response.headers["Content-Type"] in ("application/octet-stream", "image/png", "image/gif",
                                                    "image/jpeg", "image/webp")
        if attachment.content_type not in ("image/png", "image/gif", "image/jpeg", "image/webp"):
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["Content-Disposition"].startswith("attachment;")
