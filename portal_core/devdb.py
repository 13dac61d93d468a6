"""A throwaway local PostgreSQL for DEV_MODE when no DATABASE_URL is given.

Uses the machine's PostgreSQL binaries when present (Debian: /usr/lib/postgresql/<version>/bin),
else the `pgserver` package (pip install 'portal[dev]'). PostgreSQL refuses to run as root, so as
root the server runs as the `postgres` user. Data lives under <data dir>/postgres (or, when the postgres
user cannot reach that, a folder named after it in the temporary directory); the server listens only on
a unix socket beside its data, and is stopped when the portal exits.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("portal.devdb")


class NoPostgres(Exception):
    """No way to run a local PostgreSQL was found."""


def find_bin_dir() -> Path | None:
    """The newest PostgreSQL bin directory with initdb and pg_ctl, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                        if Path(p).parent.name.isdigit() else 0, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _run_as(user: str | None):
    if user is None:
        return {}
    entry = pwd.getpwnam(user)

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)

    return {"preexec_fn": demote}


def _cluster_root(data_dir: Path, user: str | None) -> Path:
    """Where the cluster lives: <data dir>/postgres, unless the postgres user (as root) cannot reach it.

    Run as root from a private directory (say /root/portal), the postgres user cannot traverse the path;
    rather than loosen permissions outside the data dir, the cluster then goes to a per-data-dir folder
    in the system's temporary directory (logged, so you know where).
    """
    preferred = data_dir / "postgres"
    if user is None:
        return preferred
    data_dir.mkdir(parents=True, exist_ok=True)
    # Traverse only (no listing) on the data dir itself is ours to grant.
    data_dir.chmod(data_dir.stat().st_mode | 0o111)
    if subprocess.run(["test", "-x", str(data_dir)], **_run_as(user)).returncode == 0:
        return preferred
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"portal-dev-postgres-{digest}"
    log.warning("the postgres user cannot reach %s (a parent directory is private); keeping the throwaway "
                "cluster in %s instead", data_dir, fallback)
    return fallback


def _run(command: list[str], user: str | None, hint: str = "") -> None:
    result = subprocess.run(command, capture_output=True, text=True, **_run_as(user))
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise NoPostgres(f"{Path(command[0]).name} failed ({result.returncode}): {' / '.join(output)}"
                         + (f"; {hint}" if hint else ""))


@contextlib.contextmanager
def throwaway_postgres(data_dir: Path, *, remove: bool = False) -> Iterator[str]:
    """Run a private PostgreSQL under ``data_dir``/postgres for the duration; yields its DATABASE_URL.

    DEV_MODE keeps the cluster for the next start; ``remove=True`` (the test kit) deletes it once stopped.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        with _pgserver(data_dir) as url:
            yield url
        return
    user = "postgres" if os.geteuid() == 0 else None
    root = _cluster_root(data_dir.resolve(), user)
    cluster, socket_dir, logfile = root / "data", root / "run", root / "postgres.log"
    root.mkdir(parents=True, exist_ok=True)
    socket_dir.mkdir(exist_ok=True)
    if user:
        entry = pwd.getpwnam(user)
        for path in (root, socket_dir, *([cluster] if cluster.exists() else [])):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    if not (cluster / "PG_VERSION").exists():
        log.info("creating a throwaway PostgreSQL cluster in %s", cluster)
        _run([str(bin_dir / "initdb"), "-D", str(cluster), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
              "--no-sync"], user)
    options = f"-c listen_addresses='' -c unix_socket_directories='{socket_dir}' -c fsync=off"
    _run([str(bin_dir / "pg_ctl"), "-D", str(cluster), "-l", str(logfile), "-o", options, "-w", "start"], user,
         hint=f"see {logfile}")
    log.warning("DEV_MODE: started a throwaway PostgreSQL in %s (log: %s); it stops when the portal exits",
                cluster, logfile)
    try:
        yield f"postgresql://postgres@/postgres?host={quote(str(socket_dir))}"
    finally:
        subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop"],
                       capture_output=True, **_run_as(user))
        log.info("stopped the throwaway PostgreSQL")
        if remove:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _pgserver(data_dir: Path) -> Iterator[str]:
    try:
        import pgserver  # type: ignore[import-not-found]
    except ImportError:
        raise NoPostgres("DEV_MODE without DATABASE_URL needs PostgreSQL: install the server "
                         "(apt-get install postgresql) or the embedded one (pip install 'portal[dev]'), "
                         "or set DATABASE_URL") from None
    server = pgserver.get_server(str((data_dir / "pgserver").resolve()), cleanup_mode="stop")
    log.warning("DEV_MODE: started an embedded PostgreSQL (pgserver) in %s", data_dir / "pgserver")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
