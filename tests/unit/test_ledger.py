"""mail.inbound.ledger planning: what a poll downloads, deletes, forgets and may recognise by content."""
from datetime import datetime, timedelta, timezone

import pytest

from mail.inbound.ledger import DELETED_KEEP_DAYS, LedgerRow, plan_by_uidl, plan_without_uidl
from models import FetchState

NOW = datetime(2024, 5, 1, tzinfo=timezone.utc)
LIMIT = 1000


def row(id, uidl, state=FetchState.FETCHED, *, size=100, message_id=None, sha="", age_days=0):
    return LedgerRow(id, uidl, state, size, message_id or f"m{id}@x", sha or f"sha{id}", id * 10,
                     NOW - timedelta(days=age_days))


def headers(message_id: str) -> bytes:
    return f"Message-ID: <{message_id}>\r\nSubject: s\r\n\r\n".encode()


def test_only_what_the_ledger_does_not_know_is_downloaded_oldest_first():
    rows = [row(1, "a"), row(2, "c")]
    plan = plan_by_uidl(rows, {3: "c", 1: "a", 2: "b", 4: "d"}, {1: 100, 2: 20, 3: 100, 4: 40}, LIMIT, False, NOW)
    assert [(item.number, item.uidl, item.size) for item in plan.items] == [(2, "b", 20), (4, "d", 40)]
    assert plan.forget == [] and plan.spare == {}


def test_delete_mode_downloads_every_listed_message_again_so_that_only_its_own_bytes_vouch_for_dele():
    rows = [row(1, "a"), row(2, "b", FetchState.DELETED), row(3, "c", FetchState.SKIPPED, size=5000)]
    plan = plan_by_uidl(rows, {1: "a", 2: "b", 3: "c", 4: "d"}, {1: 100, 2: 100, 3: 5000, 4: 10}, LIMIT, True, NOW)
    assert [item.uidl for item in plan.items] == ["a", "b", "d"] and plan.skipped == 1  # never the skipped one
    assert {key: [r.id for r in found] for key, found in plan.spare.items()} == {
        ("m1@x", "sha1"): [1], ("m2@x", "sha2"): [2]}  # recognised by content once downloaded
    assert plan.forget == [1]  # replaced by the row of this poll; a recent DELETED row is kept a while


@pytest.mark.parametrize("size, fetched", [(5000, False), (900, True)])
def test_a_skipped_message_is_downloaded_once_the_limit_lets_it_in(size, fetched):
    skipped = row(1, "a", FetchState.SKIPPED, size=size)
    plan = plan_by_uidl([skipped], {1: "a"}, {1: size}, LIMIT, False, NOW)
    assert [item.replaces for item in plan.items] == ([skipped] if fetched else [])
    assert plan.skipped == (0 if fetched else 1)


def test_a_new_message_over_the_limit_is_planned_as_too_large():
    plan = plan_by_uidl([], {1: "a", 2: "b"}, {1: LIMIT, 2: LIMIT + 1}, LIMIT, False, NOW)
    assert [(item.uidl, item.too_large) for item in plan.items] == [("a", False), ("b", True)]


def test_a_uidl_listed_twice_is_trusted_for_neither_message():
    plan = plan_by_uidl([row(1, "a")], {1: "a", 2: "a", 3: "b"}, {1: 100, 2: 100, 3: 10}, LIMIT, False, NOW)
    assert [item.number for item in plan.items] == [1, 2, 3]
    assert [r.id for found in plan.spare.values() for r in found] == [1]  # it may vouch for one of them


def test_a_known_uidl_whose_size_changed_is_not_trusted():
    plan = plan_by_uidl([row(1, "a"), row(2, "b")], {1: "a", 2: "b"}, {1: 100, 2: 101}, LIMIT, False, NOW)
    assert [item.number for item in plan.items] == [2]
    assert [r.id for found in plan.spare.values() for r in found] == [2]


def test_two_ledger_rows_under_one_uidl_trust_it_for_neither():
    rows = [row(1, "a"), row(2, "a")]
    plan = plan_by_uidl(rows, {1: "a"}, {1: 100}, LIMIT, False, NOW)
    assert [item.number for item in plan.items] == [1]
    assert sorted(r.id for found in plan.spare.values() for r in found) == [1, 2]


def test_rows_gone_from_the_server_are_forgotten_and_may_vouch_for_renumbered_messages():
    rows = [row(1, "old-a", sha="s1"), row(2, "old-b", FetchState.SKIPPED),
            row(3, "gone", FetchState.DELETED, age_days=1),
            row(4, "long gone", FetchState.DELETED, age_days=DELETED_KEEP_DAYS + 1), row(5, "kept")]
    plan = plan_by_uidl(rows, {1: "kept", 2: "new"}, {1: 100, 2: 10}, LIMIT, False, NOW)
    assert sorted(plan.forget) == [1, 2, 4]  # a recent DELETED row is kept a while
    assert {key: [r.id for r in found] for key, found in plan.spare.items()} == {
        ("m1@x", "s1"): [1], ("m3@x", "sha3"): [3], ("m4@x", "sha4"): [4]}  # not the SKIPPED one


def test_without_uidl_messages_are_recognised_by_message_id_and_size_one_row_per_copy():
    rows = [row(1, None, message_id="same@x", size=50), row(2, None, message_id="other@x", size=60),
            row(3, None, message_id="gone@x", size=70)]
    listing = {1: 50, 2: 50, 3: 61, 4: 60}
    tops = {1: "same@x", 2: "same@x", 3: "other@x", 4: "other@x"}
    asked = []

    def top(number):
        asked.append(number)
        return headers(tops[number])

    plan = plan_without_uidl(rows, listing, LIMIT, False, top, NOW)
    assert asked == [1, 2, 3, 4]
    assert [item.number for item in plan.items] == [2, 3]  # the copy (a second copy needs a second row), and a different size
    assert plan.forget == [3]
    # In delete mode each is downloaded, and recognised by its bytes before DELE.
    plan = plan_without_uidl(rows, listing, LIMIT, True, top, NOW)
    assert [item.number for item in plan.items] == [1, 2, 3, 4] and plan.forget == [1, 2, 3]


def test_without_uidl_a_too_large_message_keeps_the_headers_already_read():
    plan = plan_without_uidl([], {1: LIMIT + 1}, LIMIT, False, lambda n: headers("big@x"), NOW)
    [item] = plan.items
    assert item.too_large and item.headers.message_id == "big@x"
