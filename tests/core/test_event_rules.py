"""The rules every recorded event follows (portal_core.events): what its data may carry, how big it may be,
and what is kept of the request it came from."""

from __future__ import annotations

import json

import pytest

from portal_core.events import MAX_DATA_BYTES, REDACTED, Origin, check_data, record


@pytest.mark.parametrize("data", [
    {"password": "hunter2"},
    {"name": "notes.txt", "Token": "x"},
    {"outer": {"api_key": "x"}},
    {"items": [{"ok": 1}, {"csrf_token": "x"}]},
])
def test_data_with_a_key_that_names_a_secret_is_refused_at_any_depth(data):
    with pytest.raises(ValueError, match="must not carry a secret"):
        check_data(data)


def test_a_value_that_looks_like_a_token_is_redacted_at_any_depth_and_the_rest_is_kept():
    kept = json.loads(check_data({"name": "pt_abcdefgh12345678", "nested": {"list": ["sk_live_abcdefghij", "fine"]}}))
    assert kept == {"name": REDACTED, "nested": {"list": [REDACTED, "fine"]}}


def test_data_up_to_the_limit_is_kept_and_one_byte_more_is_refused():
    envelope = len(json.dumps({"k": ""}))
    at_limit = {"k": "x" * (MAX_DATA_BYTES - envelope)}
    assert len(check_data(at_limit).encode()) == MAX_DATA_BYTES == 4096
    with pytest.raises(ValueError, match="keep it under 4096"):
        check_data({"k": "x" * (MAX_DATA_BYTES - envelope + 1)})


async def test_a_recorded_event_keeps_the_first_300_characters_of_the_user_agent(portal_pool):
    async with portal_pool.acquire() as conn, conn.cursor() as cur:
        ids = []
        for agent in ("a" * 299 + "b", "a" * 300 + "c", None):
            ids.append(await record(cur, "user.signed_in", data={}, origin=Origin(request_id="r", ip="127.0.0.1",
                                                                                 user_agent=agent)))
        await cur.execute("SELECT id, user_agent FROM events ORDER BY id")
        stored = dict(await cur.fetchall())
    assert stored[ids[0]] == "a" * 299 + "b"
    assert stored[ids[1]] == "a" * 300
    assert stored[ids[2]] is None
    assert sorted(ids) == ids and len(set(ids)) == 3
