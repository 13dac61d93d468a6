"""The portal runs on a read-only root filesystem, as the Kubernetes manifests run it (readOnlyRootFilesystem).

The real `portal` command is started in a private mount namespace (util-linux `unshare`, as root) where `/`
is remounted read-only and the only writable place is a fresh tmpfs on /tmp (the manifests' emptyDir),
holding PORTAL_DATA_DIR; it runs as uid 10001 (the image's user) with no capabilities. It then serves the
production path: R2 storage on moto, sign-in, upload, listing, download, and a clean SIGTERM shutdown.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.ops.client import bearer, upload
from tests.support.db import create_token, create_user, run_sql
from tests.support.moto import object_keys, r2_env
from tests.support.portal import PORTAL_BIN, dev_sign_in, free_port, portal_env

# Runs inside the namespace: make / read-only (the bind is recursive, so /proc and /dev stay as they are),
# give /tmp a tmpfs, prove the root really refuses writes, then become the image's user and exec the portal.
INSIDE = r"""
set -e
mount --rbind / /
mount -o remount,bind,ro /
mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp
if touch /var/tmp/.portal-rw-probe 2>/dev/null || touch "$PORTAL_BIN.rw-probe" 2>/dev/null; then
  echo "the root filesystem is still writable" >&2; exit 99
fi
mkdir -m 700 /tmp/data && chown 10001:10001 /tmp/data
cd /tmp/data
exec setpriv --reuid 10001 --regid 10001 --clear-groups --inh-caps=-all --no-new-privs "$PORTAL_BIN"
"""


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing (util-linux); the read-only root test needs it", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the read-only root test needs root (a private mount namespace)", pytrace=False)


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the portal exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/health/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the portal did not become ready:\n{log.read_text(errors='replace')}")


async def test_the_portal_serves_with_a_read_only_root(database_url, moto_endpoint, s3, s3_bucket, tmp_path) -> None:
    for tool in ("unshare", "setpriv", "mount"):
        need(tool)
    port = free_port()
    env = portal_env(database_url, {"STORAGE_BACKEND": "r2", **r2_env(moto_endpoint, s3_bucket),
                                    "PORTAL_DATA_DIR": "/tmp/data", "HOME": "/tmp/data",
                                    "PORTAL_BIN": str(PORTAL_BIN)}, port, Path("/tmp/data"))
    log = tmp_path / "portal.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", INSIDE],
                                   env=env, cwd="/", stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        token = create_token(database_url, create_user(database_url, email="ro@example.com"))
        data = os.urandom(300_000)
        status, artifact = await upload(url, token, data, "read-only.bin")
        assert status == 201, artifact
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await dev_sign_in(http, url, email="reader@example.com")  # a session row, a cookie: all in PostgreSQL
            async with http.get(f"{url}/api/artifacts", headers=bearer(token)) as response:
                listing = await response.json()
            async with http.get(f"{url}/api/artifacts/{artifact['id']}/download", headers=bearer(token)) as response:
                downloaded = await response.read()  # a 302 to moto, followed
            async with http.get(f"{url}/health", headers={}) as response:
                health = await response.json()
        assert [a["id"] for a in listing["artifacts"]] == [artifact["id"]]
        assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(data).hexdigest()
        assert health["status"] == "ok", health
        assert len(await object_keys(s3, s3_bucket)) == 1
        assert os.stat(f"/proc/{process.pid}").st_uid == 10001, "the portal must run as the image's user"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        returncode = process.wait(30)
    text = log.read_text(errors="replace")
    assert returncode == 0, text
    assert "Read-only file system" not in text and "Traceback" not in text, text
    assert run_sql(database_url, "SELECT count(*) FROM artifacts") == [(1,)]
