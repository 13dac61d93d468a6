"""Events are recorded with the change and reach portal_event plugins through the outbox; policy and UI hooks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiopg
import pytest

from portal_core import hookimpl
from portal_core.events import record
from portal_core.settings import Limits
from tests.support.db import run_sql


class Integrator:
    """A plugin using the platform hooks the way an integrator would."""

    def __init__(self, static_dir: Path | None = None) -> None:
        self.__name__ = "integrator"  # the plugin's name (pluggy's canonical name for an object)
        self.received: list = []
        self.fail_types: set[str] = set()
        self.checked: list[tuple] = []
        self.static_dir = static_dir
        self.arrived = asyncio.Event()

    @hookimpl
    async def portal_event(self, event, app):
        if event.type in self.fail_types:
            raise RuntimeError(f"refusing {event.type} on purpose")
        self.received.append(event)
        self.arrived.set()

    @hookimpl
    def portal_check_upload(self, user, filename, content_type, size, head, config):
        self.checked.append((filename, size, head))
        if filename.endswith(".exe") or (head or b"").startswith(b"MZ"):
            return "executables are not accepted here"
        return None

    @hookimpl
    def portal_limits(self, user, plan, limits, config):
        if user.email.startswith("big@"):
            return Limits(max_file=limits.max_file * 2, quota=limits.quota * 3)
        return None

    @hookimpl
    def portal_nav_items(self, user, config):
        return [{"label": "Reports", "href": "/reports"}, {"label": "Evil", "href": "https://evil.example/"}] if user else []

    @hookimpl
    def portal_static(self, config):
        return self.static_dir

    async def wait_for(self, predicate, timeout: float = 10.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self.received):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"not delivered in {timeout}s; got {[e.type for e in self.received]}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return self.received


@pytest.fixture
async def integrator(make_app, aiohttp_client, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "report.js").write_text("console.log('report');\n")
    plugin = Integrator(static)
    client = await aiohttp_client(make_app(extra_plugins=[plugin], EVENTS_RETRY_SECONDS="0.05", EVENTS_MAX_ATTEMPTS="3"))
    plugin.client = client
    return plugin


async def test_flows_record_events_that_reach_the_plugin_with_their_request(integrator, sign_in, database_url):
    browser = await sign_in("ada@example.com", on=integrator.client)
    upload = await browser.upload(b"hello", "hello.txt", headers={"X-Request-Id": "req-upload-1"})
    artifact = await upload.json()
    assert upload.status == 201
    await (await browser.request("DELETE", f"/api/artifacts/{artifact['id']}")).release()
    received = await integrator.wait_for(lambda got: "artifact.deleted" in [e.type for e in got])
    types = [e.type for e in received]
    assert types[:2] == ["user.created", "user.signed_in"] and "artifact.created" in types
    created = next(e for e in received if e.type == "artifact.created")
    user_id = run_sql(database_url, "SELECT id FROM users WHERE email = 'ada@example.com'")[0][0]
    assert (created.actor_id, created.owner_id, created.subject_id) == (user_id, user_id, artifact["id"])
    assert created.data == {"name": "hello.txt", "size": 5, "content_type": "application/octet-stream",
                            "sha256": artifact["sha256"]}
    assert created.request_id == "req-upload-1" and created.ip == "127.0.0.1"


async def test_an_event_whose_transaction_commits_after_a_later_one_is_not_skipped(integrator, database_url):
    async with aiopg.connect(database_url) as first, aiopg.connect(database_url) as second:
        async with first.cursor() as a, second.cursor() as b:
            await a.execute("BEGIN")
            early = await record(a, "test.happened", data={"n": 1})  # the lower id, still uncommitted
            await b.execute("BEGIN")
            late = await record(b, "test.happened", data={"n": 2})
            await b.execute("COMMIT")  # the higher id commits first...
            await integrator.wait_for(lambda got: late in [e.id for e in got])
            assert early < late and early not in [e.id for e in integrator.received]
            await a.execute("COMMIT")  # ...and the lower one later: it still arrives
    await integrator.wait_for(lambda got: early in [e.id for e in got])
    assert [e.id for e in integrator.received if e.type == "test.happened"] == [late, early]


async def test_a_failing_handler_is_retried_then_parked_then_requeued(integrator, sign_in, database_url):
    from portal_core.keys import POOL
    from portal_core.event_queue import retry_parked

    integrator.fail_types.add("token.created")
    browser = await sign_in("ada@example.com", on=integrator.client)
    response = await browser.request("POST", "/api/tokens", json={"name": "ci"})
    assert response.status == 201  # the plugin's failure never reaches the request

    async def parked():
        for _ in range(200):
            rows = run_sql(database_url, "SELECT attempts, last_error, parked_at IS NOT NULL FROM event_deliveries "
                                          "WHERE plugin = 'integrator'")
            if rows and rows[0][2]:
                return rows
            await asyncio.sleep(0.05)
        raise AssertionError(f"never parked: {rows}")

    assert await parked() == [(3, "RuntimeError: refusing token.created on purpose", True)]
    # Other events kept flowing meanwhile.
    assert "user.signed_in" in [e.type for e in integrator.received]
    integrator.fail_types.clear()
    pool = integrator.client.server.app[POOL]
    assert await retry_parked(pool, "someone_else") == 0
    assert await retry_parked(pool, "integrator") == 1
    await integrator.wait_for(lambda got: "token.created" in [e.type for e in got])
    for _ in range(100):  # the delivered row is deleted just after the handler returns
        if run_sql(database_url, "SELECT count(*) FROM event_deliveries") == [(0,)]:
            break
        await asyncio.sleep(0.05)
    assert run_sql(database_url, "SELECT count(*) FROM event_deliveries") == [(0,)]


async def test_a_refused_upload_is_422_and_nothing_is_stored(integrator, sign_in, database_url, tmp_path):
    browser = await sign_in("ada@example.com", on=integrator.client)
    response = await browser.upload(b"MZ" + b"\0" * 1000, "setup.exe")
    assert response.status == 422
    assert (await response.json())["error"] == {"code": "upload_refused", "message": "executables are not accepted here"}
    # Refused by its magic bytes whatever its name: the plugin saw the file's first 4 KiB before storage.
    disguised = b"MZ" + bytes(range(256)) * 40
    response = await browser.upload(disguised, "holiday.jpg")
    assert response.status == 422
    assert integrator.checked[-1] == ("holiday.jpg", None, disguised[:4096])
    assert run_sql(database_url, "SELECT count(*) FROM artifacts") == [(0,)]
    stored = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert stored == []


async def test_limits_nav_and_static_hooks(integrator, sign_in):
    big = await sign_in("big@example.com", on=integrator.client)
    small = await sign_in("small@example.com", on=integrator.client)
    big_me = await (await big.request("GET", "/api/me")).json()
    small_me = await (await small.request("GET", "/api/me")).json()
    assert big_me["plan"]["limits"]["quota"] == 3 * small_me["plan"]["limits"]["quota"]
    # Off-site links are dropped; same-origin ones reach the header.
    assert [item for item in small_me["nav"] if item["label"] != "Webhooks"] == [{"label": "Reports", "href": "/reports"}]
    response = await integrator.client.get("/plugins/integrator/report.js")
    assert response.status == 200 and await response.text() == "console.log('report');\n"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert (await integrator.client.get("/plugins/integrator/missing.js")).status == 404
    again = await integrator.client.get("/plugins/integrator/report.js", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_a_retry_falls_due_on_time_even_when_a_wake_up_finds_nothing_to_do(make_app, aiohttp_client, sign_in,
                                                                                  database_url):
    """A failed delivery is retried when its retry is due, not at the next poll: a wake-up in between (any
    NOTIFY) that finds nothing due must still sleep only until that retry."""
    plugin = Integrator()
    plugin.fail_types.add("token.created")
    plugin.client = await aiohttp_client(make_app(extra_plugins=[plugin], EVENTS_RETRY_SECONDS="1.5",
                                                  EVENTS_POLL_SECONDS="60"))
    browser = await sign_in("ada@example.com", on=plugin.client)
    assert (await browser.request("POST", "/api/tokens", json={"name": "ci"})).status == 201
    for _ in range(200):  # the first attempt failed and its retry is scheduled
        if run_sql(database_url, "SELECT attempts FROM event_deliveries d JOIN events e ON e.id = d.event_id "
                                 "WHERE e.type = 'token.created' AND d.last_error IS NOT NULL") == [(1,)]:
            break
        await asyncio.sleep(0.02)
    plugin.fail_types.clear()
    run_sql(database_url, "NOTIFY portal_events")  # wakes the deliverer while the retry is not due yet
    await plugin.wait_for(lambda got: "token.created" in [e.type for e in got], timeout=15)


async def test_delivery_waits_out_a_database_that_refuses_it_and_loses_nothing(make_app, aiohttp_client, sign_in,
                                                                              database_url, caplog):
    integrator = Integrator()  # polling every minute: only the deliverer's own retries bring the event
    integrator.client = await aiohttp_client(make_app(extra_plugins=[integrator], EVENTS_POLL_SECONDS="60"))
    browser = await sign_in("ada@example.com", on=integrator.client)
    await integrator.wait_for(lambda got: "user.signed_in" in [e.type for e in got])
    # Claiming deliveries fails (as with the database away) while recording still works.
    run_sql(database_url, """
        CREATE FUNCTION refuse_claims() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'claims refused by the test'; END $$;
        CREATE TRIGGER refuse_claims BEFORE UPDATE ON event_deliveries FOR EACH ROW EXECUTE FUNCTION refuse_claims();""")
    assert (await browser.request("POST", "/api/tokens", json={"name": "ci"})).status == 201
    for _ in range(200):
        if "event delivery to integrator paused: claims refused by the test" in caplog.text:
            break
        await asyncio.sleep(0.02)
    assert "event delivery to integrator paused: claims refused by the test" in caplog.text
    assert "token.created" not in [e.type for e in integrator.received]
    run_sql(database_url, "DROP TRIGGER refuse_claims ON event_deliveries")
    await integrator.wait_for(lambda got: "token.created" in [e.type for e in got])


async def test_events_recorded_together_arrive_in_the_order_they_were_recorded(integrator, database_url):
    async with aiopg.connect(database_url) as conn, conn.cursor() as cur:
        await cur.execute("BEGIN")
        ids = [await record(cur, f"{noun}.happened", data={"n": n}) for n, noun in enumerate(["zeta", "alpha", "mid"])]
        # The first has been tried before (a requeued delivery): it still goes first.
        await cur.execute("UPDATE event_deliveries SET attempts = 5 WHERE event_id = %s", (ids[0],))
        await cur.execute("COMMIT")  # one commit: they are claimed and delivered as one batch
    got = await integrator.wait_for(lambda got: set(ids) <= {e.id for e in got})
    assert [(e.id, e.type) for e in got if e.id in ids] == list(zip(ids, ["zeta.happened", "alpha.happened",
                                                                          "mid.happened"]))


class Troubled:
    """A plugin whose token.created handler fails the way ``trouble`` says: a long error, or a hang."""

    __name__ = "troubled"

    def __init__(self, trouble: str) -> None:
        self.trouble = trouble

    @hookimpl
    async def portal_event(self, event, app):
        if event.type != "token.created":
            return
        if self.trouble == "long":
            raise RuntimeError("x" * 3000)
        await asyncio.sleep(3600)


@pytest.mark.parametrize("trouble, error", [
    ("long", ("RuntimeError: " + "x" * 3000)[:2000]),
    ("hang", "timed out after 0.2s")])
async def test_a_parked_delivery_says_what_went_wrong_in_at_most_2000_characters(make_app, aiohttp_client, sign_in,
                                                                                database_url, trouble, error, caplog):
    client = await aiohttp_client(make_app(extra_plugins=[Troubled(trouble)], EVENTS_MAX_ATTEMPTS="1",
                                           EVENTS_HANDLER_TIMEOUT="0.2"))
    browser = await sign_in("ada@example.com", on=client)
    assert (await browser.request("POST", "/api/tokens", json={"name": "ci"})).status == 201
    query = ("SELECT last_error FROM event_deliveries d JOIN events e ON e.id = d.event_id "
             "WHERE d.plugin = 'troubled' AND e.type = 'token.created' AND d.parked_at IS NOT NULL")
    for _ in range(200):
        if run_sql(database_url, query):
            break
        await asyncio.sleep(0.05)
    assert run_sql(database_url, query) == [(error,)]
    (parked,) = [r for r in caplog.records if "parked for troubled" in r.getMessage()]
    assert parked.levelname == "ERROR" and parked.getMessage().endswith(f"after 1 attempts: {error}")


class Blocking:
    """A plain (sync) handler that blocks, as a requests.post to a slow service would."""

    __name__ = "blocking"

    def __init__(self) -> None:
        import threading

        self.entered, self.release = threading.Event(), threading.Event()
        self.released_in_time: bool | None = None

    @hookimpl
    def portal_event(self, event, app):
        if event.type == "token.created":
            self.entered.set()
            self.released_in_time = self.release.wait(5)


async def test_a_blocking_sync_handler_runs_off_the_event_loop_so_requests_go_on(make_app, aiohttp_client, sign_in):
    plugin = Blocking()
    client = await aiohttp_client(make_app(extra_plugins=[plugin]))
    browser = await sign_in("ada@example.com", on=client)
    assert (await browser.request("POST", "/api/tokens", json={"name": "ci"})).status == 201
    for _ in range(200):
        if plugin.entered.is_set():
            break
        await asyncio.sleep(0.02)
    # The handler is blocked in its thread; the portal still answers.
    assert (await browser.request("GET", "/api/me")).status == 200
    plugin.release.set()
    for _ in range(200):
        if plugin.released_in_time is not None:
            break
        await asyncio.sleep(0.02)
    assert plugin.released_in_time is True


async def test_more_events_than_one_batch_all_arrive(integrator, database_url):
    from portal_core.outbox import BATCH

    async with aiopg.connect(database_url) as conn, conn.cursor() as cur:
        await cur.execute("BEGIN")
        ids = [await record(cur, "bulk.happened", data={"n": n}) for n in range(BATCH + 20)]
        await cur.execute("COMMIT")
    got = await integrator.wait_for(lambda got: set(ids) <= {e.id for e in got})
    assert [e.id for e in got if e.type == "bulk.happened"] == ids
