"""Why a share link works or not (shares.share_state), in the order a visitor is told, at each boundary."""

from __future__ import annotations

import datetime as dt

from portal_core.web.shares import share_state

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.timezone.utc)
SECOND = dt.timedelta(seconds=1)


def state(*, artifact_id="a1", expires_at=NOW + SECOND, max_downloads=None, downloads=0, revoked_at=None) -> str:
    return share_state(artifact_id, expires_at, max_downloads, downloads, revoked_at, NOW)


def test_a_link_works_until_the_second_it_expires():
    assert state() == "active"
    assert state(expires_at=NOW) == "expired"
    assert state(expires_at=NOW - SECOND) == "expired"


def test_a_link_works_for_exactly_its_number_of_downloads():
    assert state(max_downloads=5, downloads=4) == "active"
    assert state(max_downloads=5, downloads=5) == "exhausted"
    assert state(max_downloads=5, downloads=6) == "exhausted"
    assert state(max_downloads=None, downloads=10_000) == "active"


def test_the_visitor_is_told_the_first_reason_deleted_then_revoked_then_expired_then_used_up():
    everything = dict(artifact_id=None, revoked_at=NOW, expires_at=NOW, max_downloads=1, downloads=1)
    assert state(**everything) == "deleted"
    assert state(**{**everything, "artifact_id": "a1"}) == "revoked"
    assert state(**{**everything, "artifact_id": "a1", "revoked_at": None}) == "expired"
    assert state(**{**everything, "artifact_id": "a1", "revoked_at": None, "expires_at": NOW + SECOND}) == "exhausted"
