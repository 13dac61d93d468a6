"""`portal smoke`: the post-deploy check, run as an operator runs it, against real portal processes.

Once against a DEV_MODE portal, once against the production configuration (DEV_MODE off, OIDC sign-in
through a real OpenID Connect provider, R2 storage on moto, Stripe billing on the fake Stripe), and
against portals that are broken in ways an operator must hear about.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.support.db import run_sql
from tests.support.moto import object_keys, r2_env
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, running_provider
from tests.support.portal import PORTAL_BIN, free_port, run_portal
from tests.support.stripe import stripe_env

STEPS = ("health", "sign-in", "upload", "list", "download", "delete")


def stored_files(portal) -> list[Path]:
    """The files a DEV_MODE portal's storage holds (PORTAL_DATA_DIR/artifacts)."""
    root = portal.data_dir / "artifacts"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def smoke(base_url: str, token: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PORTAL_BIN), "smoke", "--base-url", base_url, "--token", token, *extra],
                          capture_output=True, text=True, timeout=120)


def step_lines(output: str) -> dict[str, str]:
    """{step name: its line} from the smoke test's report."""
    lines = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("ok", "FAIL"):
            lines[words[1]] = line.strip()
    return lines


def test_smoke_passes_against_a_dev_mode_portal(dev_portal, api_token, database_url) -> None:
    result = smoke(dev_portal.url, api_token)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = step_lines(result.stdout)
    assert list(lines) == list(STEPS), result.stdout
    assert all(line.startswith("ok") and " ms " in line for line in lines.values()), result.stdout
    assert "development sign-in form /dev/login" in lines["sign-in"]
    assert "bytes match" in lines["download"] and "SHA-256 matches" in lines["upload"]
    assert "smoke test passed" in result.stdout
    # The file really went through storage: what the portal stored hashed to what it recorded...
    (created,) = run_sql(database_url, "SELECT data->>'size', data->>'sha256' FROM events WHERE type = 'artifact.created'")
    assert created[0] == "4096" and len(created[1]) == 64
    # ...and the smoke test cleans up after itself: no row, and no file left in storage either.
    assert run_sql(database_url, "SELECT count(*) FROM artifacts")[0][0] == 0
    assert stored_files(dev_portal) == []


async def test_smoke_passes_against_the_production_configuration(database_url, api_token, moto_endpoint, s3, s3_bucket,
                                                                 stripe_fake) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_provider(redirect_uris=[base + "/auth/callback"], post_logout_uris=[base + "/"]) as provider:
        env = {"DEV_MODE": "false", "AUTH_BACKEND": "oidc", "STORAGE_BACKEND": "r2", "BILLING_BACKEND": "stripe",
               "POCKET_ID_ISSUER": provider.issuer, "POCKET_ID_CLIENT_ID": CLIENT_ID,
               "POCKET_ID_CLIENT_SECRET": CLIENT_SECRET, **r2_env(moto_endpoint, s3_bucket), **stripe_env(stripe_fake)}
        with run_portal(database_url, env, port=port) as portal:
            result = smoke(portal.url, api_token)
            log = portal.log()
    assert result.returncode == 0, result.stdout + result.stderr + log
    lines = step_lines(result.stdout)
    assert list(lines) == list(STEPS), result.stdout
    assert f"redirects to {provider.issuer}" in lines["sign-in"] and "PKCE (S256) and state" in lines["sign-in"]
    assert "DEV_MODE" not in result.stdout
    assert f"302 to storage at 127.0.0.1:{moto_endpoint.rsplit(':', 1)[1]}" in lines["download"], result.stdout
    assert "storage no longer has its file" in lines["delete"], result.stdout
    assert await object_keys(s3, s3_bucket) == []  # the object went with its row


async def test_smoke_fails_when_the_provider_refuses_the_portal(database_url, api_token) -> None:
    # The provider knows another callback URL than the portal's: the deploy's most common OIDC mistake.
    port = free_port()
    with running_provider(redirect_uris=["http://127.0.0.1:1/auth/callback"]) as provider:
        env = {"AUTH_BACKEND": "oidc", "POCKET_ID_ISSUER": provider.issuer, "POCKET_ID_CLIENT_ID": CLIENT_ID,
               "POCKET_ID_CLIENT_SECRET": CLIENT_SECRET}
        with run_portal(database_url, env, port=port) as portal:
            result = smoke(portal.url, api_token)
    assert result.returncode == 1, result.stdout
    lines = step_lines(result.stdout)
    assert lines["sign-in"].startswith("FAIL") and "refused the sign-in request" in lines["sign-in"], result.stdout
    assert "upload" not in lines, "the smoke test must stop at the first failure"


def test_smoke_stops_at_a_bad_token_and_says_why(dev_portal) -> None:
    result = smoke(dev_portal.url, "pt_not-a-real-token")
    assert result.returncode == 1
    lines = step_lines(result.stdout)
    assert lines["health"].startswith("ok") and lines["sign-in"].startswith("ok")
    assert lines["upload"].startswith("FAIL") and "401" in lines["upload"], result.stdout
    assert "smoke test FAILED at upload" in result.stdout


def test_smoke_cleans_up_when_a_later_step_fails(dev_portal, api_token, database_url) -> None:
    # The stored file vanishes behind the portal's back: the download fails after the upload succeeded.
    run_sql(database_url, """
        CREATE FUNCTION ops_lose_file() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.storage_key := NEW.storage_key || '-lost'; RETURN NEW; END $$;
        CREATE TRIGGER ops_lose_file BEFORE INSERT ON artifacts FOR EACH ROW EXECUTE FUNCTION ops_lose_file();""")
    result = smoke(dev_portal.url, api_token)
    assert result.returncode == 1, result.stdout
    lines = step_lines(result.stdout)
    assert lines["upload"].startswith("ok") and lines["download"].startswith("FAIL"), result.stdout
    assert "cleanup" in result.stdout and "deleted" in result.stdout.split("cleanup", 1)[1]
    assert run_sql(database_url, "SELECT count(*) FROM artifacts")[0][0] == 0
    # What is left in storage is the one object the trigger hid from the portal (under its real key), and
    # it holds exactly the bytes the portal hashed at upload.
    (recorded,) = run_sql(database_url, "SELECT data->>'sha256' FROM events WHERE type = 'artifact.created'")[0]
    (hidden,) = stored_files(dev_portal)
    assert hashlib.sha256(hidden.read_bytes()).hexdigest() == recorded and hidden.stat().st_size == 4096


def test_smoke_fails_when_the_portal_records_other_bytes_than_it_was_sent(dev_portal, api_token, database_url) -> None:
    run_sql(database_url, """
        CREATE FUNCTION ops_wrong_hash() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.sha256 := repeat('0', 64); RETURN NEW; END $$;
        CREATE TRIGGER ops_wrong_hash BEFORE INSERT ON artifacts FOR EACH ROW EXECUTE FUNCTION ops_wrong_hash();""")
    result = smoke(dev_portal.url, api_token)
    assert result.returncode == 1, result.stdout
    lines = step_lines(result.stdout)
    assert lines["upload"].startswith("FAIL") and "SHA-256 '" + "0" * 64 + "'" in lines["upload"], result.stdout
    assert run_sql(database_url, "SELECT count(*) FROM artifacts")[0][0] == 0  # cleaned up: the row...
    assert stored_files(dev_portal) == []  # ...and its file


def test_smoke_reports_an_unreachable_portal() -> None:
    result = smoke(f"http://127.0.0.1:{free_port()}", "pt_anything")
    assert result.returncode == 1
    assert "FAIL  health" in result.stdout and "unreachable" in result.stdout


@pytest.mark.parametrize("args, complaint", [
    (("--base-url", "portal.example.com", "--token", "x"), "--base-url must be the portal's http(s) URL"),
    (("--base-url", "http://127.0.0.1:1", "--token", " "), "an API token is needed"),
])
def test_smoke_refuses_bad_arguments(args, complaint) -> None:
    result = subprocess.run([str(PORTAL_BIN), "smoke", *args], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 64
    assert complaint in result.stderr
