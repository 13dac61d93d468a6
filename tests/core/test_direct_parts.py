"""What a direct upload's completion checks in the parts storage holds (direct_complete.check_parts), case
by case and with the message the client is shown, and how a clean-up runs when the request is cancelled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from portal_core.interfaces import PartLimits, StoredPart
from portal_core.web.direct_complete import check_parts, shielded

LIMITS = PartLimits(min_size=5, max_size=100, max_parts=10_000, preferred_size=8)


def parts(*sizes: int, numbers=None) -> list[StoredPart]:
    numbers = numbers or range(1, len(sizes) + 1)
    return [StoredPart(number=n, etag=f'"e{n}"', size=s) for n, s in zip(numbers, sizes)]


def listed(stored) -> dict[int, str]:
    return {p.number: p.etag.strip('"') for p in stored}


def refusal(stored, claimed, size) -> tuple[str, str] | None:
    error = check_parts(stored, claimed, size, LIMITS)
    return None if error is None else (error.status, error.code, error.message)


def test_parts_that_make_the_declared_file_are_taken():
    for sizes in [(3,), (0,), (5, 5), (5, 5, 1), (8, 8, 8), (6, 6, 6)]:
        stored = parts(*sizes)
        assert refusal(stored, listed(stored), sum(sizes)) is None, sizes


def test_no_part_in_storage_is_refused():
    assert refusal([], {1: "e1"}, 10) == (400, "no_parts", "no part of this upload has reached storage")


def test_parts_with_a_gap_are_refused_naming_the_first_twenty():
    stored = parts(5, 5, 5, numbers=[1, 3, 4])
    assert refusal(stored, listed(stored), 15) == (
        400, "bad_parts", "the parts must be numbered 1 to 3 without gaps; storage holds parts 1, 3, 4")
    twenty = parts(*[5] * 20, numbers=range(2, 22))
    assert refusal(twenty, listed(twenty), 100)[2].endswith("storage holds parts " + ", ".join(map(str, range(2, 22))))
    many = parts(*[5] * 21, numbers=range(2, 23))
    assert refusal(many, listed(many), 105)[2].endswith(
        "storage holds parts " + ", ".join(map(str, range(2, 22))) + " …")


def test_a_part_not_listed_or_listed_with_another_etag_is_refused():
    stored = parts(5, 5)
    assert refusal(stored, {1: "e1"}, 10) == (
        400, "bad_parts", 'part 2 was not listed, but storage holds it with ETag "e2"')
    assert refusal(stored, {1: "e1", 2: "zz"}, 10) == (
        400, "bad_parts", 'part 2 was listed with ETag "zz", but storage holds it with ETag "e2"')


def test_a_part_listed_that_storage_does_not_hold_is_refused():
    stored = parts(5, 5)
    assert refusal(stored, {**listed(stored), 4: "e4", 3: "e3"}, 10) == (
        400, "bad_parts", "part 3 was listed but storage does not hold it")


def test_more_or_fewer_bytes_than_declared_are_refused():
    stored = parts(5, 5)
    assert refusal(stored, listed(stored), 9) == (
        400, "size_mismatch", "storage holds 10 bytes, more than the 9 declared for this upload")
    assert refusal(stored, listed(stored), 11) == (
        400, "size_mismatch", "storage holds 10 bytes, fewer than the 11 declared for this upload")


def test_parts_of_unequal_size_too_small_or_a_larger_last_one_are_refused():
    stored = parts(6, 5, 1)
    assert refusal(stored, listed(stored), 12) == (
        400, "bad_parts", "every part but the last must be the same size: part 1 is 6 bytes, part 2 5")
    stored = parts(4, 4)
    assert refusal(stored, listed(stored), 8) == (
        400, "bad_parts", "every part but the last must be at least 5 bytes; these are 4 bytes")
    for sizes in [(5, 6), (5, 5, 6)]:
        stored = parts(*sizes)
        assert refusal(stored, listed(stored), sum(sizes)) == (
            400, "bad_parts", "the last part (6 bytes) is larger than the others (5)")
    # One part alone may be any size, the minimum included.
    for size in (1, 4, 5, 6):
        stored = parts(size)
        assert refusal(stored, listed(stored), size) is None


async def test_a_clean_up_that_fails_is_logged_and_does_not_hide_the_error_that_needed_it(caplog):
    async def broken():
        raise RuntimeError("storage said no")

    with caplog.at_level(logging.WARNING, logger="portal_core.web.direct_complete"):
        await shielded(broken())
    assert "clean-up after a failed direct upload did not work: storage said no" in caplog.text


async def test_a_clean_up_runs_to_its_end_when_the_request_is_cancelled():
    started, finished = asyncio.Event(), asyncio.Event()

    async def clean_up():
        started.set()
        await asyncio.sleep(0.05)
        finished.set()

    request = asyncio.ensure_future(shielded(clean_up()))
    await started.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert finished.is_set()
