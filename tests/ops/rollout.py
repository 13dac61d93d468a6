"""Pieces of the rolling-deploy test: a "next build" of the portal, HAProxy in front, and its stats.

The next build is this source tree with two additions to its embedded schema (a table and a column) and a
bumped version, installed as a regular wheel into a venv of its own whose dependencies come from
requirements.lock (as the image gets them). The venv is cached under /var/tmp/portal-rollout by the lock's
hash, and the wheel is reinstalled only when the source changes, so later runs take seconds.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path("/var/tmp/portal-rollout")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# What the next build's schema adds: the rules of schema.sql hold (IF NOT EXISTS, a DEFAULT for NOT NULL).
NEXT_SCHEMA = """
-- ---- next build (tests/ops/test_rolling_deploy.py): one table and one column --------------------------
CREATE TABLE IF NOT EXISTS rollout_notes (
    id         bigserial   PRIMARY KEY,
    note       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS rollout_label text NOT NULL DEFAULT '';
"""
NEXT_VERSION_SUFFIX = "+next"
SOURCES = ("pyproject.toml", "README.md", "schema.sql", "assets", "portal_core", "plugins")


def _source_digest() -> str:
    digest = hashlib.sha256(NEXT_SCHEMA.encode())
    for top in SOURCES:
        path = REPO / top
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                     if p.is_file() and "__pycache__" not in p.parts)
        for file in files:
            digest.update(str(file.relative_to(REPO)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _run(args: list[str], what: str, **kwargs) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}",
                    pytrace=False)


def next_build() -> tuple[Path, str]:
    """(the next build's `portal` command, its version), built or reused from the cache."""
    locks = (REPO / "requirements.lock").read_bytes() + (REPO / "requirements-build.lock").read_bytes()
    venv = CACHE / f"venv-{hashlib.sha256(locks).hexdigest()[:16]}"
    source = _source_digest()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs on one machine build it once
        python = venv / "bin" / "python"
        if not (venv / ".deps-installed").exists():
            shutil.rmtree(venv, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(venv)], "creating the next build's venv")
            _run([str(python), "-m", "pip", "install", "-q", "--require-hashes", "--no-deps",
                  "-r", str(REPO / "requirements.lock"), "-r", str(REPO / "requirements-build.lock")],
                 "installing requirements.lock into the next build's venv")
            (venv / ".deps-installed").touch()
        stamp = venv / ".next-build"
        if not stamp.exists() or stamp.read_text() != source:
            with tempfile.TemporaryDirectory(prefix="portal-next-") as tmp:
                tree = Path(tmp) / "src"
                tree.mkdir()
                for top in SOURCES:
                    src = REPO / top
                    if src.is_dir():
                        shutil.copytree(src, tree / top, symlinks=True,
                                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules"))
                    else:
                        shutil.copy2(src, tree / top)
                with open(tree / "schema.sql", "a", encoding="utf-8") as schema:
                    schema.write(NEXT_SCHEMA)
                pyproject = (tree / "pyproject.toml").read_text(encoding="utf-8")
                version = _version(pyproject)
                (tree / "pyproject.toml").write_text(
                    pyproject.replace(f'version = "{version}"', f'version = "{version}{NEXT_VERSION_SUFFIX}"', 1),
                    encoding="utf-8")
                dist = Path(tmp) / "dist"
                _run([str(python), "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                      "--wheel-dir", str(dist), str(tree)], "building the next build's wheel")
                wheel = next(dist.glob("portal-*.whl"))
                _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                     "installing the next build")
            _run([str(python), "-m", "pip", "check"], "pip check of the next build's venv")
            stamp.write_text(source)
    version = _version((REPO / "pyproject.toml").read_text(encoding="utf-8")) + NEXT_VERSION_SUFFIX
    return venv / "bin" / "portal", version


def _version(pyproject: str) -> str:
    for line in pyproject.splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version in pyproject.toml")


class HAProxy:
    """HAProxy in the foreground on 127.0.0.1, balancing over fixed server slots, health-checking readiness.

    Like a Kubernetes Service with a readiness probe: a slot is in rotation only while its /health/ready
    answers 200. Slots with no process are simply down.
    """

    def __init__(self, workdir: Path, slot_ports: list[int], port: int) -> None:
        if not Path(HAPROXY).exists():
            pytest.fail("haproxy is missing: run tests/setup.d/haproxy.sh (Debian's haproxy)", pytrace=False)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.socket_path = workdir / "admin.sock"
        self.config = workdir / "haproxy.cfg"
        self.log_path = workdir / "haproxy.log"
        servers = "\n".join(f"    server s{i} 127.0.0.1:{p}" for i, p in enumerate(slot_ports))
        self.config.write_text(f"""
global
    maxconn 2000
    stats socket {self.socket_path} mode 600 level admin
    log stdout format raw local0 notice

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    # What a load balancer normally does on a refused connection; the test asserts it never had to.
    retries 3
    option redispatch

frontend web
    bind 127.0.0.1:{port}
    default_backend portal

backend portal
    balance roundrobin
    # Like the manifests' readinessProbe (which allows 4 s and 2 failures), but quicker, to keep the test short.
    option httpchk GET /health/ready
    http-check expect status 200
    timeout check 1s
    default-server check inter 250ms fall 2 rise 1
{servers}
""")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([HAPROXY, "-f", str(self.config), "-db"], stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self.socket_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"haproxy did not start:\n{self.log_path.read_text(errors='replace')}", pytrace=False)
            time.sleep(0.05)

    def log(self) -> str:
        """What HAProxy said: servers going up and down, and why."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def command(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """{"s0": {"status": "UP", "stot": ..., "wretr": ..., "wredis": ..., "eresp": ...}, ...} for the backend."""
        text = self.command("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {row["svname"]: row for row in rows if row["pxname"] == "portal" and row["svname"].startswith("s")}

    def wait_status(self, expected: dict[str, str], timeout: float = 20) -> None:
        """Wait until each named slot has the status wanted ("UP" / "DOWN")."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {name: row["status"].split()[0] for name, row in self.servers().items()}
            if all(seen.get(name) == status for name, status in expected.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"haproxy never saw {expected}; it sees {seen}")
            time.sleep(0.05)
