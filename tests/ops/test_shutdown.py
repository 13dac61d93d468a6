"""SIGTERM: the portal stops accepting, lets in-flight requests finish within SHUTDOWN_GRACE_SECONDS, then
closes its pool and clients and exits 0. A request still running when the grace ends is cut, leaving nothing.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import urllib.error
import urllib.request

import aiohttp

from tests.ops.client import upload
from tests.support.db import create_token, create_user, run_sql
from tests.support.portal import PortalProcess, run_portal, start_portal

CHUNK = 256 * 1024


async def eventually(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout:g}s")


def partial_uploads(portal: PortalProcess) -> list:
    """LocalStorage's temporary files: present exactly while an upload streams into storage."""
    return list((portal.data_dir / "artifacts").rglob("*.part"))


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def start_paused_upload(portal: PortalProcess, token: str, resume: asyncio.Event) -> asyncio.Task:
    """An upload that sends one chunk, then waits for ``resume`` before sending the rest."""
    async def body():
        yield b"a" * CHUNK
        await resume.wait()
        yield b"b" * CHUNK

    return asyncio.create_task(upload(portal.url, token, body(), "slow.bin"))


async def test_sigterm_lets_an_upload_in_flight_finish_with_201(database_url) -> None:
    token = create_token(database_url, create_user(database_url))
    with run_portal(database_url, {"SHUTDOWN_GRACE_SECONDS": "30"}) as portal:
        resume = asyncio.Event()
        upload = start_paused_upload(portal, token, resume)
        await eventually(lambda: partial_uploads(portal), "the upload reaching storage")

        portal.process.send_signal(signal.SIGTERM)
        await eventually(lambda: refuses_connections(portal.port), "the portal closing its listening socket")
        assert portal.process.poll() is None, "the portal must wait for the upload in flight"

        resume.set()
        status, artifact = await asyncio.wait_for(upload, 30)
        assert status == 201, artifact
        assert artifact["size"] == 2 * CHUNK
        returncode = await asyncio.to_thread(portal.process.wait, 30)
        log = portal.log()
    assert returncode == 0, log
    assert run_sql(database_url, "SELECT size FROM artifacts") == [(2 * CHUNK,)]
    # Pool and HTTP clients were closed, not left for the interpreter to complain about.
    assert "Unclosed" not in log and "Traceback" not in log, log


async def test_sigterm_cuts_a_request_that_outlasts_the_grace_and_leaves_nothing(database_url) -> None:
    token = create_token(database_url, create_user(database_url))
    with run_portal(database_url, {"SHUTDOWN_GRACE_SECONDS": "1"}) as portal:
        resume = asyncio.Event()  # never set: this client stalls for good
        upload = start_paused_upload(portal, token, resume)
        await eventually(lambda: partial_uploads(portal), "the upload reaching storage")

        portal.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(portal.process.wait, 30)
        try:
            outcome = await asyncio.wait_for(upload, 10)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            outcome = exc
        finally:
            upload.cancel()
        leftovers = partial_uploads(portal)
        log = portal.log()
    assert returncode == 0, log
    assert not (isinstance(outcome, tuple) and outcome[0] == 201), outcome
    assert run_sql(database_url, "SELECT count(*) FROM artifacts") == [(0,)]
    assert leftovers == [], "a cut upload must not leave a partial file"


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_sigterm_turns_readiness_off_while_still_serving_for_the_delay(database_url) -> None:
    # SHUTDOWN_DELAY_SECONDS: load balancers see /health/ready go 503 and move away while the portal still
    # answers everything (no request refused); a second signal skips the rest of the delay.
    token = create_token(database_url, create_user(database_url))
    with run_portal(database_url, {"SHUTDOWN_DELAY_SECONDS": "120"}) as portal:
        assert status_of(portal.url + "/health/ready") == 200
        portal.process.send_signal(signal.SIGTERM)
        await eventually(lambda: status_of(portal.url + "/health/ready") == 503, "readiness turning off")
        assert status_of(portal.url + "/health/live") == 200
        request = urllib.request.Request(portal.url + "/api/artifacts", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, "requests are still served during the delay"
        assert status_of(portal.url + "/health") == 503
        assert not refuses_connections(portal.port) and portal.process.poll() is None

        portal.process.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(portal.process.wait, 30)
        log = portal.log()
    assert returncode == 0, log
    assert "/health/ready now answers 503; serving on for 120s" in log


def test_a_taken_port_is_named_with_exit_71_and_no_traceback(database_url) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        portal = start_portal(database_url, port=port, wait=False)
        try:
            assert portal.process.wait(timeout=60) == 71, portal.log()
        finally:
            portal.stop()
    log = portal.log()
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in log.lower(), log
    assert "Traceback" not in log and "listening on" not in log
