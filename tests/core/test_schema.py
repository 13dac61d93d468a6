"""The schema at startup: provisioning, idempotence, concurrent pods, rollback, unreachable database."""

from __future__ import annotations

import json
import socket
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from portal_core import __version__, sqltext
from portal_core.db import apply_schema, core_schema, create_pool, schema_parts
from portal_core.plugins import make_plugin_manager
from portal_core.settings import load_config
from tests.support.db import create_token, run_sql
from tests.support.gate import DatabaseGate
from tests.support.portal import run_portal, start_portal, wait_healthy

PORTAL = str(Path(sys.executable).with_name("portal"))
CATALOG = """
    SELECT table_name, column_name, data_type, column_default, is_nullable FROM information_schema.columns
    WHERE table_schema = 'public' UNION ALL
    SELECT tablename, indexname, indexdef, NULL, NULL FROM pg_indexes WHERE schemaname = 'public'
    ORDER BY 1, 2"""
# What a newer build might add: a column with a default, a table, an index.
NEWER_SQL = """
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS labels text[] NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS artifact_shares (
    artifact_id uuid NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    shared_with text NOT NULL
);
CREATE INDEX IF NOT EXISTS artifact_shares_with_idx ON artifact_shares (shared_with);
"""


def test_an_empty_database_is_provisioned_on_first_start_and_a_second_start_changes_nothing(empty_database_url):
    with run_portal(empty_database_url) as portal:
        assert "applied" in portal.log()
    tables = {row[0] for row in run_sql(empty_database_url, "SELECT tablename FROM pg_tables WHERE schemaname='public'")}
    assert {"users", "sessions", "api_tokens", "artifacts", "subscriptions", "schema_applies", "stripe_events"} <= tables
    applies = run_sql(empty_database_url, "SELECT schema_hash, portal_version, plugins FROM schema_applies")
    assert len(applies) == 1 and applies[0][1] == __version__ and applies[0][2][0] == "schema.sql"
    before = run_sql(empty_database_url, CATALOG)
    with run_portal(empty_database_url):
        pass
    assert run_sql(empty_database_url, CATALOG) == before
    assert run_sql(empty_database_url, "SELECT count(*) FROM schema_applies") == [(1,)]


def test_eight_processes_starting_at_once_against_one_empty_database_all_come_up(empty_database_url):
    portals = [start_portal(empty_database_url, wait=False) for _ in range(8)]
    try:
        for portal in portals:
            wait_healthy(portal, timeout=120)
        for portal in portals:
            assert "Traceback" not in portal.log()
    finally:
        for portal in portals:
            portal.stop()
            portal.remove()
    assert run_sql(empty_database_url, "SELECT count(*) FROM schema_applies") == [(1,)]


async def test_an_older_build_against_a_newer_database_comes_up_and_leaves_newer_objects_alone(empty_database_url):
    pool = await create_pool(empty_database_url, connect_timeout=5)
    try:
        # The newer build's schema: everything this build has, plus NEWER_SQL.
        pm = make_plugin_manager()
        parts = schema_parts(pm, load_config({"DEV_MODE": "true"}, pm))
        await apply_schema(pool, [*parts, ("newer", NEWER_SQL)], version="9.9.9")
    finally:
        pool.close()
        await pool.wait_closed()
    user = run_sql(empty_database_url, "INSERT INTO users (issuer, subject) VALUES ('t', 's') RETURNING id")[0][0]
    run_sql(empty_database_url, "INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key, labels)"
            " VALUES (gen_random_uuid(), %s, 'new.bin', 1, 'x/y', 'ab', 'k1', '{red}')", (user,))
    run_sql(empty_database_url, "INSERT INTO artifact_shares SELECT id, 'bob' FROM artifacts")
    before = run_sql(empty_database_url, CATALOG)

    token = create_token(empty_database_url, user)
    with run_portal(empty_database_url) as portal:  # this build = the older one: it knows no labels
        request = urllib.request.Request(portal.url + "/api/artifacts", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as response:
            assert [a["name"] for a in __import__("json").load(response)["artifacts"]] == ["new.bin"]
    assert run_sql(empty_database_url, CATALOG) == before
    assert run_sql(empty_database_url, "SELECT labels FROM artifacts") == [(["red"],)]
    assert run_sql(empty_database_url, "SELECT shared_with FROM artifact_shares") == [("bob",)]
    versions = [row[0] for row in run_sql(empty_database_url, "SELECT portal_version FROM schema_applies ORDER BY id")]
    assert versions == ["9.9.9", __version__]


def test_unreachable_database_retries_for_a_bounded_time_then_exits_naming_the_host(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    url = f"postgresql://portal:s3cret-pw@127.0.0.1:{port}/portal"
    portal = start_portal(url, {"DATABASE_CONNECT_TIMEOUT": "3"}, wait=False)
    code = portal.process.wait(60)
    log = portal.log()
    portal.remove()
    assert code == 69, log
    assert f"127.0.0.1:{port}" in log and "unreachable after 3s" in log
    # Bounded: it retried (more than once), each retry counting down within the 3 s it was given, then gave up.
    left = [int(n) for n in re.findall(r"retrying for up to (\d+)s more", log)]
    assert len(left) >= 2 and all(n <= 3 for n in left) and left == sorted(left, reverse=True), log
    assert "s3cret-pw" not in log


def test_schema_show_prints_the_embedded_schema(tmp_path):
    result = subprocess.run([PORTAL, "schema", "show"], env={"PATH": "/usr/bin:/bin", "DEV_MODE": "true"},
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "CREATE TABLE IF NOT EXISTS artifacts" in result.stdout
    assert "plugin stripe" in result.stdout and "stripe_events" in result.stdout


def test_schema_apply_provisions_and_exits(empty_database_url, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DEV_MODE": "true", "DATABASE_URL": empty_database_url}
    first = subprocess.run([PORTAL, "schema", "apply"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "recorded as a new provisioning" in first.stdout
    second = subprocess.run([PORTAL, "schema", "apply"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "already provisioned by this build" in second.stdout
    assert run_sql(empty_database_url, "SELECT count(*) FROM schema_applies") == [(1,)]


def test_every_schema_statement_is_idempotent_ddl():
    statements = sqltext.statements(core_schema())
    assert len(statements) > 10
    for statement in statements:
        code = "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()
        if not code:
            continue
        assert "IF NOT EXISTS" in code or code.startswith("DO "), code[:80]
        assert "DROP " not in code.upper(), code[:80]


@pytest.mark.slow
def test_the_wheel_embeds_the_schema_and_the_assets(tmp_path):
    root = Path(__file__).resolve().parents[2]
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w",
                            str(tmp_path), str(root)], check=True, capture_output=True, text=True, timeout=300)
    assert "would be ignored" not in build.stdout + build.stderr
    (wheel,) = tmp_path.glob("portal-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "portal_core/resources/schema.sql" in names
    assert "portal_core/resources/assets/index.html" in names
    assert any(n.startswith("portal_core/resources/assets/js/") for n in names)
    assert zipfile.ZipFile(wheel).read("portal_core/resources/schema.sql").decode() == (root / "schema.sql").read_text()
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[portal]" in entry_points and "r2 = portal_plugins.r2" in entry_points
    # Every asset file ships, and the built-in plugins install under their own name, not a bare `plugins`.
    assets = {str(p.relative_to(root / "assets")) for p in (root / "assets").rglob("*") if p.is_file()}
    assert {f"portal_core/resources/assets/{a}" for a in assets} <= set(names)
    assert not [n for n in names if n.startswith("plugins/")]
    assert "portal_plugins/r2/storage.py" in names


async def test_a_new_builds_schema_yields_to_traffic_holding_its_tables_and_lands_after(database_url, caplog):
    """A request that read artifacts and then writes it, while a new build adds a column to artifacts, must not
    fail (no deadlock victim): the apply gives up its locks within the lock timeout and tries again."""
    import asyncio
    import logging

    import aiopg

    pm = make_plugin_manager()
    config = load_config({"DEV_MODE": "true", "DATABASE_URL": database_url}, pm)
    parts = schema_parts(pm, config) + [("next build", "ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS x int")]
    user = run_sql(database_url, "INSERT INTO users (issuer, subject) VALUES ('t', 't') RETURNING id")[0][0]
    pool = await create_pool(database_url, connect_timeout=5)
    try:
        async with aiopg.connect(database_url) as traffic, traffic.cursor() as cur:
            await cur.execute("BEGIN")
            await cur.execute("SELECT count(*) FROM artifacts WHERE owner_id = %s", (user,))  # AccessShareLock
            caplog.set_level(logging.INFO, logger="portal.db")
            applying = asyncio.ensure_future(apply_schema(pool, parts, version="next"))
            for _ in range(3000):  # the gate: the apply met our lock and stood back
                if "yielded to traffic" in caplog.text:
                    break
                assert not applying.done(), applying
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the schema apply never yielded: it queued behind the request's lock")
            # Our transaction goes on to write the table the apply wants: it is not a deadlock victim.
            await cur.execute("INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key) "
                              "VALUES (gen_random_uuid(), %s, 'a', 1, 'x/y', 'h', 'k')", (user,))
            await cur.execute("COMMIT")
        result = await asyncio.wait_for(applying, 60)
    finally:
        pool.close()
        await pool.wait_closed()
    assert result.recorded
    assert run_sql(database_url, "SELECT count(x) FROM artifacts") == [(0,)]
    assert run_sql(database_url, "SELECT portal_version FROM schema_applies ORDER BY id DESC LIMIT 1") == [("next",)]


async def test_a_second_schema_apply_waits_on_the_schema_lock_until_the_first_commits(database_url):
    """Two builds applying at once: while the first is held inside its locked transaction (at a gate), the
    second waits on the schema's advisory lock — seen in pg_locks, not inferred from timing — and runs after."""
    import asyncio

    from portal_core.db import SCHEMA_LOCK_ID

    pm = make_plugin_manager()
    parts = schema_parts(pm, load_config({"DEV_MODE": "true", "DATABASE_URL": database_url}, pm))
    gate = DatabaseGate(database_url)
    schema_lock = ("advisory", SCHEMA_LOCK_ID >> 32, SCHEMA_LOCK_ID & 0xFFFFFFFF)
    pool = await create_pool(database_url, connect_timeout=5)
    try:
        with gate:
            first = asyncio.ensure_future(apply_schema(pool, [*parts, ("first build", gate.sql())], version="first"))
            await gate.wait_for_waiters(lambda waits: gate.waiting_at_gate() == 1)
            second = asyncio.ensure_future(apply_schema(
                pool, [*parts, ("second build", "CREATE TABLE IF NOT EXISTS second_build (x int)")], version="second"))
            waits = await gate.wait_for_waiters(lambda waits: len(waits) == 2 or second.done(), timeout=30)
            assert not second.done(), "the second apply ran while the first was inside its transaction"
            assert waits.count(schema_lock) == 1, f"the second apply does not wait on the schema lock: {waits}"
            assert run_sql(database_url, "SELECT to_regclass('second_build')") == [(None,)]
        first_result, second_result = await asyncio.wait_for(asyncio.gather(first, second), 60)
    finally:
        pool.close()
        await pool.wait_closed()
    assert first_result.recorded and second_result.recorded
    assert run_sql(database_url, "SELECT portal_version FROM schema_applies ORDER BY id DESC LIMIT 2") == [
        ("second",), ("first",)]
    assert run_sql(database_url, "SELECT count(*) FROM second_build") == [(0,)]


async def test_reapplying_a_schema_takes_no_table_locks(database_url):
    """Scaling out (another pod of the build that provisioned the database) must not queue behind traffic."""
    import aiopg

    pm = make_plugin_manager()
    config = load_config({"DEV_MODE": "true", "DATABASE_URL": database_url}, pm)
    parts = schema_parts(pm, config)
    user = run_sql(database_url, "INSERT INTO users (issuer, subject) VALUES ('t', 't') RETURNING id")[0][0]
    write = ("INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key) "
             "VALUES (gen_random_uuid(), %s, 'a', 1, 'x/y', 'h', gen_random_uuid()::text)")
    pool = await create_pool(database_url, connect_timeout=5)
    try:
        async with aiopg.connect(database_url) as traffic, traffic.cursor() as cur:
            await cur.execute("BEGIN")
            # An uncommitted write: RowExclusiveLock on artifacts, which CREATE INDEX IF NOT EXISTS waits for.
            await cur.execute(write, (user,))
            result = await apply_schema(pool, parts, version=__version__, retry_for=1.0)
            await cur.execute("ROLLBACK")
            assert not result.recorded
            # Another build with the same objects runs its statements, but the CREATE INDEX / ADD COLUMN IF NOT
            # EXISTS that would change nothing are skipped: still no table lock, though a write is open.
            await cur.execute("BEGIN")
            await cur.execute(write, (user,))
            other = await apply_schema(pool, parts, version="other", retry_for=1.0)
            assert other.recorded
            # A build that really adds something to that table has to wait for the write, and says so.
            adding = parts + [("next", "CREATE INDEX IF NOT EXISTS artifacts_name_idx ON artifacts (name)")]
            with pytest.raises(RuntimeError, match="kept waiting for locks held by traffic"):
                await apply_schema(pool, adding, version="next", retry_for=1.0)
            await cur.execute("ROLLBACK")
    finally:
        pool.close()
        await pool.wait_closed()


async def test_sql_added_under_the_same_version_is_applied_even_after_a_part_with_nothing_to_do(database_url):
    """A plugin's SQL changes the schema's hash, so it is applied though the portal's version did not change —
    also when it comes after a part whose statements are all done already."""
    import time

    pm = make_plugin_manager()
    parts = schema_parts(pm, load_config({"DEV_MODE": "true", "DATABASE_URL": database_url}, pm))
    done = ("plugin a", "CREATE INDEX IF NOT EXISTS test_a_name_idx ON artifacts (name)")
    pool = await create_pool(database_url, connect_timeout=5)
    try:
        first = await apply_schema(pool, [*parts, done], version="same")
        started = time.perf_counter()
        second = await apply_schema(pool, [*parts, done, ("plugin b", "CREATE TABLE IF NOT EXISTS added_later (x int)")],
                                    version="same")
        took = time.perf_counter() - started
    finally:
        pool.close()
        await pool.wait_closed()
    assert first.recorded and second.recorded and first.schema_hash != second.schema_hash
    assert 0 <= second.seconds <= took  # what the log reports is how long the apply took
    assert run_sql(database_url, "SELECT count(*) FROM added_later") == [(0,)]
    assert run_sql(database_url, "SELECT plugins[array_length(plugins, 1)] FROM schema_applies ORDER BY id DESC LIMIT 1") == [
        ("plugin b",)]


async def test_a_broken_part_is_named_and_nothing_of_that_apply_is_kept(database_url):
    pm = make_plugin_manager()
    parts = schema_parts(pm, load_config({"DEV_MODE": "true", "DATABASE_URL": database_url}, pm))
    broken = ("plugin broken", "CREATE TABLE IF NOT EXISTS half_done (x int);\nCREATE TABLE oops (x int")
    pool = await create_pool(database_url, connect_timeout=5)
    try:
        with pytest.raises(RuntimeError, match="applying schema from plugin broken failed: syntax error"):
            await apply_schema(pool, [*parts, broken], version="broken")
    finally:
        pool.close()
        await pool.wait_closed()
    assert run_sql(database_url, "SELECT to_regclass('half_done')") == [(None,)]
    assert run_sql(database_url, "SELECT count(*) FROM schema_applies WHERE portal_version = 'broken'") == [(0,)]


def test_plugins_that_contribute_no_sql_add_no_part():
    from portal_core import hookimpl

    class Quiet:
        @hookimpl
        def portal_schema_sql(self, config):
            return None

    class Blank:
        @hookimpl
        def portal_schema_sql(self, config):
            return "  \n "

    class Some:
        @hookimpl
        def portal_schema_sql(self, config):
            return "CREATE TABLE IF NOT EXISTS some_plugin (x int)"

    pm = make_plugin_manager(extra=[Quiet(), Blank(), Some()])
    parts = schema_parts(pm, load_config({"DEV_MODE": "true"}, pm))
    assert parts[0][0] == "schema.sql"
    assert [sql for _name, sql in parts].count("CREATE TABLE IF NOT EXISTS some_plugin (x int)") == 1
    assert all(sql and sql.strip() for _name, sql in parts)
    assert len(parts) == len(schema_parts(make_plugin_manager(), load_config({"DEV_MODE": "true"}, pm))) + 1


def test_schema_sql_is_split_into_statements_whatever_the_quotes_and_comments():
    sql = """-- a comment; with a semicolon
CREATE TABLE IF NOT EXISTS a (x text DEFAULT 'it''s; fine', "we;ird" int);
/* block; comment */ CREATE INDEX IF NOT EXISTS a_x_idx ON a (x);
DO $$ BEGIN PERFORM 1; END $$;
DO $body$ BEGIN EXECUTE $q$SELECT ';'$q$; END $body$;
ALTER TABLE a ADD COLUMN IF NOT EXISTS y int NOT NULL DEFAULT 0;
ALTER TABLE ONLY "a" ADD COLUMN IF NOT EXISTS z numeric(10, 2);
ALTER TABLE a ADD COLUMN IF NOT EXISTS p int, ADD COLUMN IF NOT EXISTS q int;
"""
    parts = sqltext.statements(sql)
    assert len(parts) == 7
    assert parts[0].startswith("CREATE TABLE") and "'it''s; fine'" in parts[0]
    assert sqltext.index_created(parts[1].split("*/")[1].strip()) == "a_x_idx"
    assert parts[3].endswith("$body$")
    assert sqltext.column_added(parts[4]) == ("a", "y")
    assert sqltext.column_added(parts[5]) == ("a", "z")  # the comma inside numeric(10, 2) is not a second action
    assert sqltext.column_added(parts[6]) is None  # two actions: run as written
    assert sqltext.index_created(parts[0]) is None and sqltext.column_added(parts[2]) is None
    # Edges of the same rules: a lone minus, a comment right after an operator, a quote at the very end,
    # one never closed, doubled quotes next to a semicolon.
    for sql, expected in {
        "SELECT 1 - 1; SELECT 2": ["SELECT 1 - 1", "SELECT 2"],
        "/* a; */ SELECT 1": ["/* a; */ SELECT 1"],
        "SELECT 2*/* c; */3": ["SELECT 2*/* c; */3"],
        "SELECT 'x'": ["SELECT 'x'"],
        "SELECT 'unterminated; x": ["SELECT 'unterminated; x"],
        "SELECT 'a'''; SELECT 2": ["SELECT 'a'''", "SELECT 2"],
        "SELECT ''';'; SELECT 2": ["SELECT ''';'", "SELECT 2"],
    }.items():
        assert sqltext.statements(sql) == expected, sql


def test_a_schema_apply_that_yielded_retries_after_50_ms_doubling_to_at_most_2_s():
    from itertools import islice

    from portal_core.db import retry_delays

    assert list(islice(retry_delays(), 9)) == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


def test_each_retry_pause_is_jittered_by_up_to_half_either_way():
    from portal_core.retrying import jittered

    pauses = [jittered(2.0, 0.5) for _ in range(500)]
    assert all(1.0 <= pause <= 3.0 for pause in pauses)
    assert min(pauses) < 1.1 and max(pauses) > 2.9  # spread over the whole range


def test_an_unreachable_database_is_tried_again_after_250_ms_doubling_to_at_most_2_s():
    from itertools import islice

    from portal_core.db import connect_delays

    assert list(islice(connect_delays(), 6)) == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
