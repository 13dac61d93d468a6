"""A throwaway PostgreSQL cluster a test may stop and start at will (never the machine's main cluster).

Made from the installed binaries (/usr/lib/postgresql/<newest>/bin) in a temporary directory, listening
on a free 127.0.0.1 port. As root, initdb and the server run as the ``postgres`` user, as scripts/test does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import psycopg2

PG_ROOT = Path("/usr/lib/postgresql")


def pg_bin() -> Path:
    """The newest installed PostgreSQL bin directory; fails with what to install when there is none."""
    candidates = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
                        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not candidates:
        raise AssertionError(f"no PostgreSQL server binaries under {PG_ROOT}: apt-get install postgresql "
                             "(scripts/test does when the machine has none)")
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_owner(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@attrs.define
class Cluster:
    """One cluster: ``stop()``/``start()`` it under a running portal; ``url(db)`` gives its DSN."""

    directory: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _ctl(self, *args: str) -> None:
        result = subprocess.run(_as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), *args]),
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            log = (self.directory / "log").read_text(errors="replace")[-2000:] if (self.directory / "log").exists() else ""
            raise AssertionError(f"pg_ctl {' '.join(args)} failed: {result.stdout}{result.stderr}\n{log}")

    def start(self) -> None:
        self._ctl("-l", str(self.directory / "log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.directory} "
                  "-c fsync=off -c full_page_writes=off", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` ends every client connection, as a restart or failover would."""
        self._ctl("-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        conn = psycopg2.connect(self.url(), connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """initdb + start a cluster on a free port; stopped and deleted however the test ends."""
    binaries = pg_bin()
    directory = Path(tempfile.mkdtemp(prefix="portal-ops-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    directory.chmod(0o755)
    cluster = Cluster(directory, _free_port(), binaries)
    result = subprocess.run(_as_owner([str(binaries / "initdb"), "-D", str(cluster.data), "-U", "postgres",
                                       "--auth=trust", "--no-sync"]), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        raise AssertionError(f"initdb failed: {result.stdout}{result.stderr}")
    try:
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
