"""Bad input everywhere: 400 for a stale form, 403, 404, 500 without a traceback; CSRF on every POST."""
import logging

import pytest

from models import Lead, db


def _post_routes(app):
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and rule.endpoint != "static":
            values = {arg: 1 for arg in rule.arguments}
            if "kind" in rule.arguments:
                values["kind"] = "leads"
            if "action" in rule.arguments:
                values["action"] = "activate"
            if "key" in rule.arguments:
                values["key"] = "google"
            yield rule.build(values)[1]


def test_every_post_without_a_csrf_token_is_a_400_that_says_to_reload(app_factory, make_user):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        make_user("admin@example.com", admin=True)
        client = app.test_client()
        page = client.get("/signin").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        client.post("/signin", data={"email": "admin@example.com", "password": "correct horse battery",
                                     "csrf_token": token})
        assert client.get("/leads/").status_code == 200
        routes = list(_post_routes(app))
        assert len(routes) >= 8
        for url in routes:
            for headers in ({}, {"HX-Request": "true"}):
                response = client.post(url, headers=headers)
                assert response.status_code == 400, url
                assert "Reload the page and try again." in response.get_data(as_text=True)


def test_htmx_post_with_the_token_in_its_header_is_accepted(app_factory, make_user):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        admin = make_user("admin@example.com", admin=True)
        client = app.test_client()
        page = client.get("/signin").get_data(as_text=True)
        token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        client.post("/signin", data={"email": admin.email, "password": "correct horse battery", "csrf_token": token})
        lead = Lead(last_name="Lee", company="Acme", owner_id=admin.id)
        db.session.add(lead)
        db.session.commit()
        body = client.get("/leads/").get_data(as_text=True)
        assert f'"X-CSRFToken": "{token}"' in body or "X-CSRFToken" in body
        response = client.post(f"/leads/{lead.id}/delete", headers={"HX-Request": "true", "X-CSRFToken": token})
        assert response.status_code == 200


def test_unexpected_error_is_a_500_page_without_a_traceback(app_factory, make_user, caplog):
    app = app_factory(PROPAGATE_EXCEPTIONS=False)

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    with app.app_context():
        client = app.test_client()
        make_user("admin@example.com", admin=True)
        with caplog.at_level(logging.ERROR):
            response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500 and "Something went wrong" in body
    assert "Traceback" not in body and "secret internals" not in body
    assert "secret internals" in caplog.text and "Traceback" in caplog.text


def test_unknown_url_is_a_404_page(client, admin):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "Back to the CRM" in response.get_data(as_text=True)


def test_pages_carry_a_content_security_policy(client, admin):
    response = client.get("/leads/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
