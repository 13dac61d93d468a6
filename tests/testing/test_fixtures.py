"""The test kit's fixtures (portal_core.testing), used the way a plugin author's test suite uses them."""

from __future__ import annotations

import pytest

from portal_core import hookimpl
from portal_core.testing import signed_in


async def test_the_real_app_serves_customers_signed_in_side_by_side(portal_client):
    ada = await signed_in(portal_client, "ada@example.com")
    bob = await signed_in(portal_client, "bob@example.com")
    assert (await (await ada.upload(b"ada's notes", "notes.txt")).json())["name"] == "notes.txt"
    ada_me = await (await ada.get("/api/me")).json()
    bob_me = await (await bob.get("/api/me")).json()
    assert (ada_me["user"]["email"], bob_me["user"]["email"]) == ("ada@example.com", "bob@example.com")
    assert (ada_me["usage"]["count"], bob_me["usage"]["count"]) == (1, 0)
    assert not ada_me["user"]["is_admin"]
    # State-changing requests carry the session's CSRF token; without it the portal refuses.
    assert (await ada.post("/api/tokens", json={"name": "ci"})).status == 201
    assert (await ada.post("/api/tokens", json={"name": "ci"}, csrf=False)).status == 403


async def test_signed_in_as_an_administrator(portal_client):
    admin = await signed_in(portal_client, "root@example.com", admin=True)
    assert (await (await admin.get("/api/me")).json())["user"]["is_admin"] is True


@pytest.mark.portal(env={"PLAN_FREE_MAX_FILE": "1KiB"})
async def test_the_portal_marker_gives_the_app_its_settings(portal_client):
    ada = await signed_in(portal_client, "ada@example.com")
    assert (await ada.upload(b"x" * 1024, "fits.bin")).status == 201
    refused = await ada.upload(b"x" * 1025, "too-big.bin")
    assert refused.status == 413 and "1 KiB" in (await refused.json())["error"]["message"]


async def test_captured_events_are_the_events_plugins_receive(portal_client, captured_events):
    ada = await signed_in(portal_client, "ada@example.com")
    artifact = await (await ada.upload(b"hello", "hello.txt")).json()
    created = await captured_events.wait_for("artifact.created", subject_id=artifact["id"])
    assert created.data["name"] == "hello.txt" and created.owner_id == created.actor_id
    assert captured_events.types()[:2] == ["user.created", "user.signed_in"]
    with pytest.raises(AssertionError, match="no artifact.deleted event within 0.2s; captured: "):
        await captured_events.wait_for("artifact.deleted", timeout=0.2)


class Gatekeeper:
    """A test-only plugin: refuses .exe files on the free plan."""

    def __init__(self) -> None:
        self.asked = []

    @hookimpl
    def portal_check_upload(self, plan, filename):
        self.asked.append((plan, filename))
        return "no executables on the free plan" if plan == "free" and filename.endswith(".exe") else None


class TestPluginsGivenByAFixture:
    @pytest.fixture
    def portal_plugins(self):
        self.gatekeeper = Gatekeeper()
        return [self.gatekeeper]

    async def test_the_plugin_takes_part(self, portal_client, portal_data_dir):
        ada = await signed_in(portal_client, "ada@example.com")
        refused = await ada.upload(b"MZ...", "setup.exe")
        assert refused.status == 422
        assert (await refused.json())["error"]["message"] == "no executables on the free plan"
        assert self.gatekeeper.asked == [("free", "setup.exe")]
        assert not [p for p in (portal_data_dir / "artifacts").rglob("*") if p.is_file()]


class WithANote:
    """A test-only plugin that adds a table of its own (portal_schema_sql)."""

    @hookimpl
    def portal_schema_sql(self, config):
        return "CREATE TABLE IF NOT EXISTS kit_notes (body text NOT NULL);"


async def test_each_test_database_is_its_own_copy_of_the_provisioned_schema(portal_db_templates):
    from portal_core.testing.portal import create_user, drop_database
    from tests.support.db import run_sql

    made = [await portal_db_templates.database(), await portal_db_templates.database(),
            await portal_db_templates.database(plugins=[WithANote()])]
    try:
        first, second, with_note = made
        assert len(set(made)) == 3
        create_user(first, "ada@example.com")
        assert run_sql(first, "SELECT email FROM users") == [("ada@example.com",)]
        assert run_sql(second, "SELECT count(*) FROM users") == [(0,)]
        # A plugin's SQL makes a different template; the plain ones do not have its table.
        assert run_sql(with_note, "SELECT count(*) FROM kit_notes") == [(0,)]
        assert run_sql(first, "SELECT to_regclass('kit_notes')") == [(None,)]
        # The schema was applied (and recorded) as a start applies it.
        assert run_sql(second, "SELECT count(*) FROM schema_applies") == [(1,)]
    finally:
        for url in made:
            drop_database(url)
