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
