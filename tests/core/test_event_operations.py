"""What an operator sees of event delivery: pending and parked deliveries per plugin on /metrics, and
housekeeping deleting events past EVENTS_RETENTION_DAYS (their queued deliveries with them)."""

from __future__ import annotations

import asyncio
import re

from portal_core import hookimpl
from tests.support.db import run_sql

OPS_TOKEN = "ops-" + "5" * 28


class Failing:
    """Every delivery raises."""

    __name__ = "failing"

    @hookimpl
    async def portal_event(self, event, app):
        raise RuntimeError("the chat service is down")


class Gated:
    """Every delivery waits until the test opens the gate."""

    __name__ = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.received: list[int] = []

    @hookimpl
    async def portal_event(self, event, app):
        await self.gate.wait()
        self.received.append(event.id)


async def scrape(client) -> dict[str, float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert response.status == 200, await response.text()
    text = await response.text()
    return {match[1]: float(match[2]) for match in re.finditer(r"^(portal_event_deliver\S+) (\S+)$", text, re.M)}


async def until(predicate, what: str) -> None:
    for _ in range(400):
        if predicate():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {what}")


async def test_metrics_show_pending_and_parked_deliveries_per_plugin(make_app, aiohttp_client, sign_in, database_url):
    gated = Gated()
    client = await aiohttp_client(make_app(extra_plugins=[Failing(), gated], OPS_TOKEN=OPS_TOKEN,
                                           EVENTS_MAX_ATTEMPTS="1", EVENTS_RETRY_SECONDS="0.05"))
    await sign_in("ada@example.com", on=client)  # user.created, user.signed_in
    parked = "SELECT count(*) FROM event_deliveries WHERE plugin = 'failing' AND parked_at IS NOT NULL"
    await until(lambda: run_sql(database_url, parked) == [(2,)], "both deliveries to 'failing' parked")

    metrics = await scrape(client)
    assert metrics['portal_event_deliveries_parked{plugin="failing"}'] == 2
    assert metrics['portal_event_deliveries_pending{plugin="failing"}'] == 0
    assert metrics['portal_event_deliveries_pending{plugin="gated"}'] == 2  # held by its handler
    assert metrics['portal_event_deliveries_parked{plugin="gated"}'] == 0
    assert metrics['portal_event_deliveries_total{outcome="failed",plugin="failing"}'] == 2

    gated.gate.set()
    await until(lambda: run_sql(database_url, "SELECT count(*) FROM event_deliveries WHERE plugin = 'gated'") == [(0,)],
                "the gated plugin's deliveries done")
    metrics = await scrape(client)
    assert metrics['portal_event_deliveries_pending{plugin="gated"}'] == 0
    assert metrics['portal_event_deliveries_total{outcome="delivered",plugin="gated"}'] == 2
    assert metrics['portal_event_deliveries_parked{plugin="failing"}'] == 2  # parked stays parked


async def test_housekeeping_deletes_events_past_the_retention_with_their_deliveries(make_app, aiohttp_client,
                                                                                    database_url):
    run_sql(database_url, "INSERT INTO event_consumers (plugin) VALUES ('old_reader')")
    insert = "INSERT INTO events (type, data, occurred_at) VALUES (%s, '{}', now() - make_interval(days => %s)) RETURNING id"
    old = run_sql(database_url, insert, ("test.happened", 31))[0][0]
    kept = run_sql(database_url, insert, ("test.happened", 29))[0][0]
    assert run_sql(database_url, "SELECT count(*) FROM event_deliveries WHERE plugin = 'old_reader'") == [(2,)]

    await aiohttp_client(make_app(EVENTS_RETENTION_DAYS="30"))  # housekeeping runs its jobs at start

    assert run_sql(database_url, "SELECT id FROM events WHERE type = 'test.happened'") == [(kept,)]
    assert run_sql(database_url, "SELECT event_id FROM event_deliveries WHERE plugin = 'old_reader'") == [(kept,)]
    assert old != kept


async def test_a_portal_holds_one_listen_connection_and_keeps_it(portal_client, captured_events, portal_db):
    """Delivery is woken by NOTIFY on one long-lived connection per process: not a reconnect per wake-up,
    which would churn the database's connections (and still deliver, so only this test notices)."""
    from portal_core.event_queue import CHANNEL
    from portal_core.testing import signed_in

    def listeners() -> list[int]:
        return [pid for (pid,) in run_sql(portal_db, "SELECT pid FROM pg_stat_activity WHERE datname = "
                                                     "current_database() AND query = %s", (f"LISTEN {CHANNEL}",))]

    for _ in range(100):
        if listeners():
            break
        await asyncio.sleep(0.05)
    first = listeners()
    ada = await signed_in(portal_client, "ada@example.com")
    for number in range(3):  # each upload's event wakes the deliverer through the same connection
        artifact = await (await ada.upload(b"x", f"{number}.txt")).json()
        await captured_events.wait_for("artifact.created", subject_id=artifact["id"])
        assert listeners() == first and len(first) == 1


async def test_a_lost_listen_connection_is_made_again_and_wakes_delivery(make_app, aiohttp_client, sign_in, database_url,
                                                                        caplog):
    """The database dropping the LISTEN connection (a restart, a failover) must not end delivery: the
    deliverer says so, connects again and delivery goes on being woken by NOTIFY (polling is 60 s here)."""
    from portal_core.event_queue import CHANNEL

    gated = Gated()
    gated.gate.set()
    client = await aiohttp_client(make_app(extra_plugins=[gated], EVENTS_POLL_SECONDS="60"))
    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = %s"
    await until(lambda: run_sql(database_url, query, (f"LISTEN {CHANNEL}",)), "a LISTEN connection")
    (first,) = run_sql(database_url, query, (f"LISTEN {CHANNEL}",))
    run_sql(database_url, "SELECT pg_terminate_backend(%s)", first)
    await until(lambda: run_sql(database_url, query, (f"LISTEN {CHANNEL}",)) not in ([], [first]), "a new LISTEN connection")
    assert "event notifications unavailable" in caplog.text
    browser = await sign_in(on=client)
    assert (await browser.request("POST", "/api/tokens", json={"name": "ci"})).status == 201
    (token_event,) = run_sql(database_url, "SELECT id FROM events WHERE type = 'token.created'")
    await until(lambda: token_event[0] in gated.received, "the token.created delivery")


async def test_an_idle_deliverer_waits_for_a_wake_up_instead_of_asking_the_database_again_and_again(
        make_app, aiohttp_client, database_url):
    gated = Gated()
    gated.gate.set()
    # Every claim is an UPDATE of event_deliveries: a statement trigger counts them, rows or not.
    run_sql(database_url, """
        CREATE TABLE claims_seen (n bigint NOT NULL);
        INSERT INTO claims_seen VALUES (0);
        CREATE FUNCTION count_claim() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN UPDATE claims_seen SET n = n + 1; RETURN NULL; END $$;
        CREATE TRIGGER count_claims AFTER UPDATE ON event_deliveries FOR EACH STATEMENT EXECUTE FUNCTION count_claim();""")
    await aiohttp_client(make_app(extra_plugins=[gated], EVENTS_POLL_SECONDS="60"))
    await asyncio.sleep(0.5)  # started: the first look at the queue is done
    (before,) = run_sql(database_url, "SELECT n FROM claims_seen")[0]
    await asyncio.sleep(1.5)
    (after,) = run_sql(database_url, "SELECT n FROM claims_seen")[0]
    assert after - before <= 2, f"{after - before} claims in 1.5 s of an idle portal"
