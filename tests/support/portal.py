"""Run real `portal` processes in tests: the installed console command, a free port, stopped by PID.

    with run_portal(database_url, {"STORAGE_BACKEND": "r2", ...}) as portal:
        portal.url, portal.pid, portal.log()

Every portal runs DEV_MODE=true unless the env says otherwise, with its own data directory.
Use `dev_sign_in(session, portal)` to get a signed-in aiohttp session through the real dev login form,
or tests.support.db.create_user/create_token for an API token without a browser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs

PORTAL_BIN = Path(sys.executable).with_name("portal")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@attrs.define
class PortalProcess:
    process: subprocess.Popen
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def remove(self) -> None:
        """Delete the portal's data directory (its log with it): call once you are done reading the log."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def portal_env(database_url: str | None, env: Mapping[str, str], port: int, data_dir: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("POCKET_ID_", "R2_", "STRIPE_", "PLAN_", "AUTH_", "STORAGE_", "BILLING_",
                                 "DATABASE_URL", "DEV_MODE", "LOG_"))}
    base.update({"DEV_MODE": "true", "PORT": str(port), "HOST": "127.0.0.1", "PORTAL_DATA_DIR": str(data_dir),
                 "APP_BASE_URL": f"http://127.0.0.1:{port}", "DATABASE_CONNECT_TIMEOUT": "10"})
    if database_url:
        base["DATABASE_URL"] = database_url
    base.update(env)
    return base


def start_portal(database_url: str | None, env: Mapping[str, str] | None = None, *, port: int | None = None,
                 wait: bool = True, args: tuple[str, ...] = (), portal_bin: Path = PORTAL_BIN) -> PortalProcess:
    """Start `portal` and (by default) wait until /health answers 200; fails with its log otherwise.

    ``portal_bin`` is the console script to run (default: this venv's, an editable install).
    """
    if not portal_bin.exists():
        raise AssertionError(f"{portal_bin} is missing: install the project (pip install -e '.[test]')")
    port = port or free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="portal-test-"))
    log_path = data_dir / "portal.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([str(portal_bin), *args], env=portal_env(database_url, env or {}, port, data_dir),
                                   cwd=data_dir, stdout=log_file, stderr=subprocess.STDOUT)
    portal = PortalProcess(process, port, data_dir, log_path)
    if wait:
        wait_healthy(portal)
    return portal


def wait_healthy(portal: PortalProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if portal.process.poll() is not None:
            raise AssertionError(f"portal exited with {portal.process.returncode} before it was healthy:\n{portal.log()}")
        try:
            with urllib.request.urlopen(portal.url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    portal.stop(signal.SIGKILL)
    raise AssertionError(f"portal did not become healthy within {timeout}s:\n{portal.log()}")


@contextlib.contextmanager
def run_portal(database_url: str | None, env: Mapping[str, str] | None = None, **kwargs) -> Iterator[PortalProcess]:
    portal = start_portal(database_url, env, **kwargs)
    try:
        yield portal
    finally:
        portal.stop()
        portal.remove()


async def dev_sign_in(session, portal_url: str, email: str = "ada@example.com", name: str = "Ada",
                      admin: bool = False, next_path: str = "/") -> str:
    """Sign in through the real dev login flow with an aiohttp ClientSession; returns the CSRF token.

    The session must use aiohttp.CookieJar(unsafe=True) (cookies from an IP host). The test kit's flow
    (portal_core.testing), for a portal process rather than an in-process test client.
    """
    from portal_core.testing.client import dev_sign_in as kit_sign_in

    return await kit_sign_in(session, portal_url, email=email, name=name, admin=admin, next_path=next_path)
