"""Sign-in throttling (issue 10.2): atomic under concurrency, keyed by address and client, and a
budget per client across addresses, so guessing is slowed and nobody can be locked out."""
from __future__ import annotations

import threading

from crm import users
from tests.conftest import PASSWORD

WRONG = "The email address or password is not right."
SLOWED = "Too many failed sign-ins"
STRANGER = "203.0.113.9"
OFFICE = "198.51.100.7"


def _signin(client, email: str, password: str, remote: str):
    return client.post("/signin", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": remote})


def test_parallel_wrong_guesses_are_checked_exactly_the_allowed_number_of_times(app, make_user, monkeypatch):
    # The first wait outlasts the test: on a loaded machine 40 requests can take longer than the
    # usual 2 s, and a guess after the wait is rightly checked again.
    monkeypatch.setattr(users, "FIRST_WAIT_S", 600)
    make_user("admin@example.com", admin=True)
    guesses = 40
    start = threading.Barrier(guesses)
    answers: list[tuple[int, str]] = []

    def guess(n: int) -> None:
        with app.app_context():
            client = app.test_client()
            start.wait()
            response = _signin(client, "admin@example.com", f"guess-{n}-wrong", STRANGER)
            answers.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == guesses
    assert sorted({status for status, _ in answers}) == [422]
    assert sum(WRONG in page for _, page in answers) == users.FREE_FAILURES
    assert sum(SLOWED in page for _, page in answers) == guesses - users.FREE_FAILURES


def test_a_stranger_cannot_lock_out_a_user_who_signs_in_from_elsewhere(client, make_user):
    make_user("admin@example.com", admin=True)
    for _ in range(3 * users.FREE_FAILURES):
        _signin(client, "admin@example.com", "guess-guess", STRANGER)
    assert SLOWED in _signin(client, "admin@example.com", PASSWORD, STRANGER).get_data(as_text=True)
    assert _signin(client, "admin@example.com", PASSWORD, OFFICE).status_code == 303


def test_one_password_tried_across_many_addresses_is_slowed(client, make_user):
    make_user("admin@example.com", admin=True)
    for n in range(users.CLIENT_FREE_FAILURES):
        assert WRONG in _signin(client, f"user{n}@example.com", "Summer2026!", STRANGER).get_data(as_text=True)
    sprayed = _signin(client, "admin@example.com", "Summer2026!", STRANGER)
    assert sprayed.status_code == 422 and "from your network" in sprayed.get_data(as_text=True)
    assert _signin(client, "admin@example.com", PASSWORD, OFFICE).status_code == 303


def test_addresses_of_one_ipv6_network_share_one_budget(client, make_user):
    make_user("admin@example.com", admin=True)
    for n in range(users.FREE_FAILURES):
        _signin(client, "admin@example.com", "guess-guess", f"2001:db8:1:2::{n + 1:x}")
    slowed = _signin(client, "admin@example.com", PASSWORD, "2001:db8:1:2:ffff::1")
    assert SLOWED in slowed.get_data(as_text=True)
    assert _signin(client, "admin@example.com", PASSWORD, "2001:db8:1:3::1").status_code == 303


def test_a_right_password_clears_the_slow_down_for_that_address_and_client(client, make_user):
    make_user("admin@example.com", admin=True)
    for _ in range(users.FREE_FAILURES - 1):
        _signin(client, "admin@example.com", "guess-guess", OFFICE)
    assert _signin(client, "admin@example.com", PASSWORD, OFFICE).status_code == 303
    client.post("/signout")
    for _ in range(users.FREE_FAILURES - 1):
        assert WRONG in _signin(client, "admin@example.com", "guess-guess", OFFICE).get_data(as_text=True)
