"""`portal admin ...`: the operator's commands, run as the installed console script against the test database."""

from __future__ import annotations

import json
import os
import subprocess

from tests.support.portal import PORTAL_BIN


def portal(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DEV_MODE"))}
    env.update(DEV_MODE="true", DATABASE_URL=database_url)
    return subprocess.run([str(PORTAL_BIN), "admin", *args], env=env, capture_output=True, text=True, timeout=60)


async def test_grant_admin_lets_the_first_admin_in_and_survives_their_next_sign_in(client, sign_in, database_url, sql):
    await sign_in("first@example.com")  # the provider says: not an admin
    done = portal(database_url, "grant-admin", "FIRST@example.com")
    assert done.returncode == 0, done.stderr
    assert "first@example.com" in done.stdout
    again = await sign_in("first@example.com")  # signs in again, still without the provider's admin group
    me = await (await again.request("GET", "/api/me")).json()
    assert me["user"]["is_admin"] is True
    async with again.request("GET", "/api/admin/users") as resp:
        assert resp.status == 200
    assert sql("SELECT is_admin, admin_granted FROM users") == [(False, True)]
    assert portal(database_url, "grant-admin", "first@example.com").stdout.endswith("nothing changed\n")

    assert portal(database_url, "revoke-admin", "first@example.com").returncode == 0
    async with again.request("GET", "/api/admin/users") as resp:
        assert resp.status == 404
    granted = sql("SELECT type, actor_id, data FROM events WHERE type LIKE 'admin.%%' ORDER BY id")
    assert granted == [("admin.admin_granted", None, {"via": "cli"}), ("admin.admin_revoked", None, {"via": "cli"})]


async def test_freeze_and_unfreeze_from_the_command_line(client, sign_in, database_url, sql):
    customer = await sign_in("eve@example.com")
    user_id = sql("SELECT id FROM users")[0][0]
    frozen = portal(database_url, "freeze", str(user_id))
    assert frozen.returncode == 0 and "froze eve@example.com" in frozen.stdout
    async with customer.request("GET", "/api/me") as resp:
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "suspended"

    listed = portal(database_url, "users", "--frozen", "--json")
    assert listed.returncode == 0, listed.stderr
    (user,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert user["email"] == "eve@example.com" and user["frozen"] is True

    assert portal(database_url, "unfreeze", "eve@example.com").returncode == 0
    async with customer.request("GET", "/api/me") as resp:
        assert resp.status == 200
    assert [r[0] for r in sql("SELECT type FROM events WHERE type LIKE 'admin.%%' ORDER BY id")] == [
        "admin.user_frozen", "admin.user_unfrozen"]


async def test_users_lists_and_searches(client, sign_in, database_url):
    for email in ("ada@example.com", "grace@example.com"):
        await sign_in(email)
    table = portal(database_url, "users")
    assert table.returncode == 0
    assert table.stdout.index("grace@example.com") < table.stdout.index("ada@example.com")  # newest first
    assert "2 user(s)" in table.stderr
    found = portal(database_url, "users", "--query", "GRACE")
    assert "grace@example.com" in found.stdout and "ada@example.com" not in found.stdout


async def test_an_unknown_or_ambiguous_user_is_exit_67_naming_it(client, database_url, sql):
    unknown = portal(database_url, "freeze", "nobody@example.com")
    assert unknown.returncode == 67 and "no user with the email nobody@example.com" in unknown.stderr
    assert portal(database_url, "unfreeze", "424242").returncode == 67
    sql("INSERT INTO users (issuer, subject, email) VALUES ('a', '1', 'twin@example.com'), ('b', '1', 'twin@example.com')")
    twins = portal(database_url, "freeze", "twin@example.com")
    assert twins.returncode == 67 and "2 users have the email" in twins.stderr
    assert sql("SELECT count(*) FROM users WHERE frozen_at IS NOT NULL") == [(0,)]
    assert portal(database_url, "freeze").returncode == 2  # usage: USER is required


def test_an_empty_user_is_a_usage_error_and_a_database_without_the_schema_is_named(database_url, portal_empty_db):
    empty = portal(database_url, "freeze", "  ")
    assert empty.returncode == 2 and "USER is empty" in empty.stderr
    for args in (("users",), ("freeze", "ada@example.com")):
        bare = portal(portal_empty_db, *args)
        assert bare.returncode == 69, bare.stderr
        assert "has no portal schema" in bare.stderr and "portal schema apply" in bare.stderr
        assert "Traceback" not in bare.stderr
