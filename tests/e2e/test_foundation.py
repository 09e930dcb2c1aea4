"""In headless Chromium: first start, sign in, add a lead, find it by active search, open it."""
import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"


def test_first_start_to_a_lead_and_its_emails_section(page: Page, live_server):
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="Create the administrator")).to_be_visible()
    page.get_by_label("Name").fill("Margaret Chen")
    page.get_by_label("Email").fill("margaret@northwind.example")
    page.locator("#password").fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Create the administrator").click()
    expect(page.get_by_role("heading", name="Leads")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill("margaret@northwind.example")
    page.locator("#password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The email address or password is not right.")
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Leads")).to_be_visible()

    for first, last, company, email in [("Olivia", "Bennett", "Brightwater Logistics", "olivia@brightwater.example"),
                                        ("Kenji", "Watanabe", "Sakura Foods", "kenji@sakura.example")]:
        page.get_by_role("button", name="New Lead").click()
        page.get_by_label("Last Name").fill(last)
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".field-error")).to_contain_text("A Lead needs a Company.")  # htmx 422 swap
        page.get_by_label("First Name").fill(first)
        page.get_by_label("Company").fill(company)
        page.get_by_label("Email", exact=True).fill(email.upper())
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("heading", name=f"{first} {last}")).to_be_visible()
        page.get_by_role("link", name="Leads", exact=True).first.click()

    # htmx is deferred and wires the search box at DOMContentLoaded; text typed before that
    # becomes the box's "unchanged" value and sends nothing, so wait for the page first.
    page.wait_for_load_state()
    search = page.get_by_role("searchbox")
    with page.expect_response(lambda r: "q=sakura" in r.url):
        search.fill("sakura")
    expect(page.locator("#record-list")).to_contain_text("Kenji Watanabe")
    expect(page.locator("#record-list")).not_to_contain_text("Olivia Bennett")
    expect(page).to_have_url(re.compile(r"q=sakura"))
    page.get_by_role("link", name="Kenji Watanabe").click()
    expect(page.get_by_role("heading", name="Emails")).to_be_visible()
    expect(page.locator("#emails")).to_contain_text("an administrator must enable it first")
    expect(page.locator(".record-fields")).to_contain_text("kenji@sakura.example")
