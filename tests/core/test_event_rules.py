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


def test_the_size_limit_counts_utf8_bytes_and_keeps_other_scripts_readable():
    name = "é" * 2042  # {"name": "…"}: 12 + 2 × 2042 = 4,096 bytes in UTF-8 (escaped as \u00e9: 12,264)
    assert json.loads(check_data({"name": name})) == {"name": name}
    assert "é" in check_data({"name": name})
    with pytest.raises(ValueError, match="event data is 4098 bytes"):
        check_data({"name": name + "é"})


async def test_an_event_read_back_has_every_field_it_was_recorded_with(portal_db, portal_pool):
    from portal_core.events import EVENT_COLUMNS, Event
    from tests.support.db import create_user

    # Two users, so the actor (an administrator) and the owner (the customer) differ.
    admin = create_user(portal_db, email="root@example.com", is_admin=True)
    customer = create_user(portal_db, email="ada@example.com")
    async with portal_pool.acquire() as conn, conn.cursor() as cur:
        event_id = await record(cur, "plan.changed", actor_id=admin, owner_id=customer, subject_id=customer,
                                data={"plan": "pro"}, origin=Origin(request_id="req-1", ip="192.0.2.7", user_agent="ua/1"))
        await cur.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE id = %s", (event_id,))
        event = Event.from_row(await cur.fetchone())
    assert (event.id, event.type, event.actor_id, event.owner_id, event.subject_id, dict(event.data), event.request_id,
            event.ip, event.user_agent) == (event_id, "plan.changed", admin, customer, str(customer), {"plan": "pro"},
                                            "req-1", "192.0.2.7", "ua/1")
    assert event.occurred_at.tzinfo is not None


@pytest.mark.parametrize("handler_timeout", [0.5, 30, 600])
def test_a_claimed_delivery_is_leased_for_longer_than_its_handler_may_run(handler_timeout):
    """Another process may take a delivery over only when its lease ran out, so the lease must outlast the
    handler's timeout: a live process never has a delivery it is still running taken from it."""
    from portal_core.outbox import OutboxSettings

    settings = OutboxSettings(max_attempts=3, retry_seconds=1, handler_timeout=handler_timeout, poll_seconds=5)
    assert settings.lease_seconds > handler_timeout + 1


@pytest.mark.parametrize("attempts, base, expected", [(1, 2.0, 2.0), (2, 2.0, 4.0), (4, 0.5, 4.0), (30, 2.0, 3600.0)])
def test_retries_back_off_exponentially_up_to_an_hour_with_20_percent_jitter(attempts, base, expected):
    """After the n-th failure the next try is base × 2^(n-1) seconds away (at most an hour), ±20 %."""
    from portal_core.outbox import backoff

    delays = [backoff(attempts, base) for _ in range(500)]
    assert all(0.8 * expected <= delay <= 1.2 * expected for delay in delays)
    assert min(delays) < 0.85 * expected and max(delays) > 1.15 * expected  # spread over the whole range


def test_a_lost_listen_connection_is_tried_again_after_half_a_second_doubling_to_at_most_30():
    from itertools import islice

    from portal_core.outbox import listen_retry_delays

    assert list(islice(listen_retry_delays(), 9)) == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


async def test_consumers_unseen_for_a_week_are_forgotten_with_their_queues_and_old_events_purged(portal_db, portal_pool):
    from portal_core.event_queue import consumer_names, forget_stale_consumers, purge_old_events, register_consumers
    from tests.support.db import run_sql

    await register_consumers(portal_pool, ["webhooks", "gone_plugin", "quiet_plugin"])
    assert await consumer_names(portal_pool) == ["gone_plugin", "quiet_plugin", "webhooks"]
    async with portal_pool.acquire() as conn, conn.cursor() as cur:
        old = await record(cur, "test.happened", data={})  # queued for all three
    run_sql(portal_db, "UPDATE events SET occurred_at = now() - interval '31 days' WHERE id = %s", (old,))
    run_sql(portal_db, "UPDATE event_consumers SET seen_at = now() - interval '7 days 1 hour' WHERE plugin = 'gone_plugin'")
    run_sql(portal_db, "UPDATE event_consumers SET seen_at = now() - interval '6 days 23 hours' WHERE plugin = 'quiet_plugin'")
    assert await forget_stale_consumers(portal_pool) == 1
    assert await consumer_names(portal_pool) == ["quiet_plugin", "webhooks"]
    assert run_sql(portal_db, "SELECT plugin FROM event_deliveries ORDER BY plugin") == [("quiet_plugin",), ("webhooks",)]
    assert await forget_stale_consumers(portal_pool) == 0
    # Events past the retention go, their queued deliveries with them; newer ones stay.
    async with portal_pool.acquire() as conn, conn.cursor() as cur:
        new = await record(cur, "test.happened", data={})
    assert await purge_old_events(portal_pool, days=30) == 1
    assert run_sql(portal_db, "SELECT id FROM events WHERE type = 'test.happened'") == [(new,)]
    assert run_sql(portal_db, "SELECT count(*) FROM event_deliveries WHERE event_id = %s", (old,)) == [(0,)]
    # In batches: a batch that came back full is followed by another, until one is not.
    async with portal_pool.acquire() as conn, conn.cursor() as cur:
        for _ in range(4):
            await record(cur, "test.happened", data={})
    run_sql(portal_db, "UPDATE events SET occurred_at = now() - interval '31 days' WHERE id > %s", (new,))
    assert await purge_old_events(portal_pool, days=30, batch=2) == 4
    assert run_sql(portal_db, "SELECT id FROM events WHERE type = 'test.happened'") == [(new,)]
