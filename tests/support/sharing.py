"""Helpers for the share-link and file-request tests."""

from __future__ import annotations

import asyncio

from tests.support.db import run_sql


async def me_id(browser) -> int:
    async with browser.request("GET", "/api/me") as resp:
        return (await resp.json())["user"]["id"]


def make_pro(sql, user_id: int) -> None:
    """Put the user on the pro plan, as a finished checkout would have."""
    sql("INSERT INTO subscriptions (user_id, plan, status, provider) VALUES (%s, 'pro', 'active', 'dev') "
        "ON CONFLICT (user_id) DO UPDATE SET plan = 'pro', status = 'active'", (user_id,))


async def share(browser, artifact_id: str, **body) -> dict:
    """POST /api/artifacts/{id}/shares; the created link (fails the test on anything but 201)."""
    async with browser.request("POST", f"/api/artifacts/{artifact_id}/shares", json=body) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def wait_for_lock_waiters(database_url: str, at_least: int, timeout: float = 30) -> None:
    """Wait until ``at_least`` sessions of this database are blocked waiting for a row lock."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        (count,) = run_sql(database_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                         "AND wait_event_type = 'Lock'")[0]
        if count >= at_least:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {count} of {at_least} requests reached the lock within {timeout}s")
        await asyncio.sleep(0.02)


def browser_form(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart form of several 'file' fields exactly as browsers build it (raw UTF-8 names; see
    tests.support.app.browser_multipart)."""
    boundary = "----PortalTestBoundaryMany9x"
    body = b""
    for name, data in files.items():
        escaped = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{escaped}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
