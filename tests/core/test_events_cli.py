"""`portal events`: the event log as JSON lines (--type, --since, --follow), parked deliveries listed, and
`portal events retry PLUGIN` delivering a parked one through a running portal; wrong input says what."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiopg
import pytest

from portal_core import hookimpl, keys
from portal_core.events import record, record_now
from tests.support.db import run_sql

PORTAL = str(Path(sys.executable).with_name("portal"))


class Flaky:
    """Fails token.created until told otherwise; keeps what it received."""

    __name__ = "flaky"

    def __init__(self) -> None:
        self.failing = True
        self.received: list[str] = []

    @hookimpl
    async def portal_event(self, event, app):
        if self.failing and event.type == "token.created":
            raise RuntimeError("the audit store refused it")
        self.received.append(event.type)


async def portal_events(database_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        PORTAL, "events", *args, env={"PATH": os.environ["PATH"], "DEV_MODE": "true", "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture
async def parked(make_app, aiohttp_client, sign_in, database_url):
    """A running portal whose 'flaky' plugin has one parked delivery (token.created), after a sign-in."""
    flaky = Flaky()
    client = await aiohttp_client(make_app(extra_plugins=[flaky], EVENTS_MAX_ATTEMPTS="1"))
    user = await sign_in("ada@example.com", on=client)
    assert (await user.request("POST", "/api/tokens", json={"name": "ci"})).status == 201
    query = "SELECT count(*) FROM event_deliveries WHERE plugin = 'flaky' AND parked_at IS NOT NULL"
    for _ in range(400):
        if run_sql(database_url, query) == [(1,)]:
            break
        await asyncio.sleep(0.025)
    assert run_sql(database_url, query) == [(1,)]
    flaky.client = client
    return flaky


async def test_events_print_as_json_lines_then_the_parked_deliveries(parked, database_url):
    status, out, err = await portal_events(database_url)
    assert status == 0, err
    events = lines(out)
    assert [e["type"] for e in events] == ["user.created", "user.signed_in", "token.created"]
    assert events[2]["data"]["name"] == "ci" and events[2]["ip"] == "127.0.0.1" and events[2]["request_id"]
    token_event = events[2]["id"]
    assert "1 parked delivery(ies)" in err
    assert f"flaky: event {token_event} (token.created) after 1 attempts" in err
    assert "RuntimeError: the audit store refused it" in err


async def test_type_and_since_filter_and_a_bad_since_is_refused(parked, database_url):
    status, out, _ = await portal_events(database_url, "--type", "token.created")
    assert status == 0 and [e["type"] for e in lines(out)] == ["token.created"]

    run_sql(database_url, "UPDATE events SET occurred_at = '2020-06-01T00:00:00Z' WHERE type = 'user.created'")
    status, out, _ = await portal_events(database_url, "--since", "2021-01-01")  # no zone: UTC
    assert status == 0 and [e["type"] for e in lines(out)] == ["user.signed_in", "token.created"]
    status, out, _ = await portal_events(database_url, "--since", "2020-05-31T23:00:00-02:00")
    assert status == 0 and [e["type"] for e in lines(out)] == ["user.signed_in", "token.created"]

    status, out, err = await portal_events(database_url, "--since", "last tuesday")
    assert status == 2 and out == ""
    assert "--since" in err and "'last tuesday' is not an ISO 8601 time" in err


async def test_retry_delivers_a_parked_delivery_and_an_unknown_plugin_is_named(parked, database_url):
    status, _, err = await portal_events(database_url, "retry", "nope")
    assert status == 1 and "no plugin named 'nope' receives events" in err and "flaky" in err
    status, _, err = await portal_events(database_url, "retry")
    assert status == 2 and "name the plugin" in err

    parked.failing = False
    status, out, err = await portal_events(database_url, "retry", "flaky")
    assert status == 0, err
    assert "requeued 1 parked delivery(ies) for flaky" in out
    for _ in range(400):  # the running portal is woken (NOTIFY) and delivers it
        if "token.created" in parked.received:
            break
        await asyncio.sleep(0.025)
    assert "token.created" in parked.received
    status, _, err = await portal_events(database_url, "retry", "flaky")
    assert status == 1 and "'flaky' has no parked deliveries" in err
    _, _, err = await portal_events(database_url)
    assert "parked" not in err


async def test_follow_prints_an_event_recorded_after_it_started(parked, database_url):
    process = await asyncio.create_subprocess_exec(
        PORTAL, "events", "--follow", "--type", "report.exported",
        env={"PATH": os.environ["PATH"], "DEV_MODE": "true", "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        pool = parked.client.server.app[keys.POOL]
        first = await record_now(pool, "report.exported", data={"rows": 1})
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert (line["id"], line["type"], line["data"]) == (first, "report.exported", {"rows": 1})
        second = await record_now(pool, "report.exported", data={"rows": 2})  # while it is following
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert (line["id"], line["data"]) == (second, {"rows": 2})
        # The lower id commits after a higher one: printed too, once.
        async with aiopg.connect(database_url) as early_conn, early_conn.cursor() as early:
            await early.execute("BEGIN")
            lower = await record(early, "report.exported", data={"rows": 3})
            higher = await record_now(pool, "report.exported", data={"rows": 4})
            line = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
            assert line["id"] == higher > lower
            await early.execute("COMMIT")
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert line["id"] == lower
        fifth = await record_now(pool, "report.exported", data={"rows": 5})
        line = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert line["id"] == fifth  # and neither of the two again
        assert process.returncode is None  # still following
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
