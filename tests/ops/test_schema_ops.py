"""Schema provisioning as an operator does it: `portal schema show|apply`, and rolling back to an older build.

An older build started against a database a newer build has provisioned must come up, work, and leave the
newer objects (tables, columns, their data) alone: the schema only ever adds, never drops or alters.
"""

from __future__ import annotations

import os
import subprocess

import aiohttp

from portal_core import __version__
from tests.ops.client import bearer, upload
from tests.support.db import create_token, create_user, run_sql
from tests.support.portal import PORTAL_BIN, run_portal


def portal(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DEV_MODE"))}
    return subprocess.run([str(PORTAL_BIN), *args], capture_output=True, text=True, timeout=120,
                          env={**base, "DEV_MODE": "true", **env}, cwd="/")


def test_schema_apply_provisions_once_and_is_idempotent(empty_database_url) -> None:
    first = portal("schema", "apply", DATABASE_URL=empty_database_url)
    assert first.returncode == 0, first.stderr
    assert "recorded as a new provisioning" in first.stdout
    tables = {row[0] for row in run_sql(empty_database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"users", "sessions", "api_tokens", "artifacts", "subscriptions", "schema_applies"} <= tables
    again = portal("schema", "apply", DATABASE_URL=empty_database_url)
    assert again.returncode == 0 and "already provisioned by this build" in again.stdout
    assert run_sql(empty_database_url, "SELECT count(*) FROM schema_applies") == [(1,)]


def test_schema_show_prints_the_core_and_plugin_sql_without_a_database() -> None:
    shown = portal("schema", "show")
    assert shown.returncode == 0, shown.stderr
    assert "-- ===== schema.sql =====" in shown.stdout and "CREATE TABLE IF NOT EXISTS artifacts" in shown.stdout
    assert "-- ===== plugin stripe =====" in shown.stdout and "stripe_events" in shown.stdout


def test_schema_apply_without_a_database_says_what_is_missing() -> None:
    result = portal("schema", "apply", DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere",
                    DATABASE_CONNECT_TIMEOUT="1")
    assert result.returncode == 69 and "unreachable" in result.stderr


async def test_an_older_build_comes_up_on_a_newer_database_and_leaves_its_objects_alone(database_url) -> None:
    # What a newer build might have added: a column with a default, a table with data, an index, its record.
    run_sql(database_url, """
        ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS labels text[] NOT NULL DEFAULT '{}';
        CREATE TABLE artifact_shares (artifact_id uuid REFERENCES artifacts (id) ON DELETE CASCADE, email text);
        CREATE INDEX artifacts_labels_idx ON artifacts USING gin (labels);
        INSERT INTO schema_applies (schema_hash, portal_version, plugins)
            VALUES (repeat('f', 64), '99.0.0', ARRAY['schema.sql']);""")
    user_id = create_user(database_url)
    token = create_token(database_url, user_id)
    run_sql(database_url, "INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key, labels) "
                          "VALUES (gen_random_uuid(), %s, 'new.bin', 1, 'application/octet-stream', '', 'k', "
                          "ARRAY['from-the-future'])", (user_id,))
    run_sql(database_url, "INSERT INTO artifact_shares SELECT id, 'bob@example.com' FROM artifacts")

    with run_portal(database_url) as older:
        status, body = await upload(older.url, token, b"written by the older build", "old.txt")
        assert status == 201, body
        async with aiohttp.ClientSession() as http:
            async with http.get(older.url + "/api/artifacts", headers=bearer(token)) as response:
                names = sorted(a["name"] for a in (await response.json())["artifacts"])
    assert names == ["new.bin", "old.txt"]
    assert run_sql(database_url, "SELECT name, labels FROM artifacts ORDER BY name") == [
        ("new.bin", ["from-the-future"]), ("old.txt", [])]
    assert run_sql(database_url, "SELECT email FROM artifact_shares") == [("bob@example.com",)]
    assert run_sql(database_url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'artifacts_labels_idx'") == [(1,)]
    # The database shows which build provisioned it last: the older one, after the newer.
    versions = [row[0] for row in run_sql(database_url, "SELECT portal_version FROM schema_applies ORDER BY id")]
    assert versions[-2:] == ["99.0.0", __version__]
