"""What every benchmark shares: figures over repeated runs, the machine, a scratch database, wrk, RSS.

Ratios are paired: each run measures the portal and its floor back to back, the ratio is taken per
run, and the table shows the median (and min–max) of those per-run ratios, so a machine that slows
down halfway through moves both sides of a pair together instead of skewing the result.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import attrs
import psycopg2

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get("PORTAL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class BenchError(Exception):
    """A benchmark could not measure what it set out to (a peer failed, a request was refused...)."""


@attrs.frozen
class Figure:
    """One measured quantity over several runs."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def show(self, fmt: str = "{:,.0f}") -> str:
        return f"{fmt.format(self.median)} ({fmt.format(min(self.values))}–{fmt.format(max(self.values))})"


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> Figure:
    """Per-run ratios of two series measured side by side."""
    return Figure(tuple(n / d for n, d in zip(numerator, denominator, strict=True)))


@attrs.frozen
class Row:
    """A line of the results table: the portal figure, its floor, the ratio and the budget it must meet."""

    name: str
    unit: str
    portal: Figure
    floor: Figure | None
    floor_name: str
    ratio: Figure | None
    budget: str
    met: bool
    fmt: str = "{:,.0f}"


# -- the machine -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """nproc, CPU model, memory, Python, PostgreSQL and wrk versions: what a reader needs to compare."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    with contextlib.closing(psycopg2.connect(ADMIN_URL, connect_timeout=5)) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    wrk = (subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
           if shutil.which("wrk") else "wrk (not installed: only the API benchmark needs it)")
    import aiohttp
    import aiopg
    return {
        "nproc": str(os.cpu_count()),
        "CPU": cpu,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "Python": platform.python_version(),
        "PostgreSQL": pg,
        "aiohttp / aiopg": f"{aiohttp.__version__} / {aiopg.__version__}",
        "load generator": wrk or "wrk",
        "kernel": platform.release(),
    }


# -- a scratch database --------------------------------------------------------------------------------


def _admin():
    try:
        conn = psycopg2.connect(ADMIN_URL, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        raise BenchError(f"PostgreSQL is unreachable at {ADMIN_URL} (set PORTAL_BENCH_DATABASE_URL): {exc}") from None
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def scratch_database(*, provisioned: bool = True) -> Iterator[str]:
    """A new database (with the portal's schema applied unless ``provisioned=False``), dropped afterwards."""
    import asyncio

    from tests.support.db import provision

    name = "portal_bench_" + uuid.uuid4().hex[:12]
    with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + name))
    try:
        if provisioned:
            asyncio.run(provision(url))
        yield url
    finally:
        with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@attrs.frozen
class R2Portal:
    """A `portal` process with STORAGE_BACKEND=r2 on a fresh moto and a scratch database, and one user's token."""

    endpoint: str
    bucket: str
    portal: object  # tests.support.portal.PortalProcess
    token: str


@contextlib.contextmanager
def r2_portal(logs: Path, *, email: str, max_file: str, quota: str) -> Iterator[R2Portal]:
    """What the upload benchmarks share: moto (logging into ``logs``), a bucket, a provisioned database and
    the portal on them with the free plan's limits raised to ``max_file`` / ``quota``; all torn down after."""
    import asyncio

    from tests.support.db import create_token, create_user
    from tests.support.moto import MotoServer, r2_env, s3_client
    from tests.support.portal import run_portal

    with contextlib.ExitStack() as stack:
        moto = MotoServer(logs / "moto.log")
        moto.start()
        stack.callback(moto.stop)
        bucket = f"bench-{uuid.uuid4().hex[:12]}"

        async def create_bucket() -> None:
            async with s3_client(moto.endpoint) as s3:
                await s3.create_bucket(Bucket=bucket)

        asyncio.run(create_bucket())
        database_url = stack.enter_context(scratch_database())
        env = {**r2_env(moto.endpoint, bucket), "STORAGE_BACKEND": "r2", "LOG_LEVEL": "WARNING",
               "PLAN_FREE_MAX_FILE": max_file, "PLAN_FREE_QUOTA": quota}
        portal = stack.enter_context(run_portal(database_url, env))
        yield R2Portal(moto.endpoint, bucket, portal, create_token(database_url, create_user(database_url, email=email)))


# -- wrk -----------------------------------------------------------------------------------------------


@attrs.frozen
class Load:
    """What one wrk run measured: the rate, and the server's CPU time per request when its pid was given."""

    rate: float
    requests: int
    cpu_us: float | None  # the server process's CPU per request
    db_cpu_us: float | None  # PostgreSQL's (every backend serving the database) per request
    wrk_cpu_us: float  # the load generator's per request


def wrk(url: str, *, headers: dict[str, str], connections: int, seconds: int, threads: int = 1,
        pid: int | None = None, database: str | None = None) -> Load:
    """Drive ``url`` with wrk; fails if any answer was not 2xx/3xx or a socket errored."""
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: run scripts/bench (it installs Debian's wrk) or apt-get install wrk")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    cpu_before = cpu_seconds(pid) if pid else 0.0
    db_before = backend_cpu(database) if database else {}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime
    cpu = cpu_seconds(pid) - cpu_before if pid else None
    db_cpu = sum(v - db_before.get(k, 0.0) for k, v in backend_cpu(database).items()) if database else None
    out = done.stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or match is None:
        raise BenchError(f"wrk failed ({done.returncode}): {out}{done.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise BenchError(f"wrk against {url} saw failures, so its rate means nothing:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    per = 1e6 / requests
    return Load(float(match.group(1)), requests, cpu * per if cpu is not None else None,
                db_cpu * per if db_cpu is not None else None, wrk_cpu * per)


# -- process memory ------------------------------------------------------------------------------------


def status_kb(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in kB (VmRSS, VmHWM...)."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    if match is None:
        raise BenchError(f"/proc/{pid}/status has no {field}")
    return int(match.group(1))


def reset_peak_rss(pid: int) -> None:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL backend connected to ``database`` (a name or a URL), by pid."""
    name = urlsplit(database).path.lstrip("/") if "://" in database else database
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres:") and f" {name} " in title:
                found[int(proc.name)] = cpu_seconds(int(proc.name))
        except OSError:  # the backend exited meanwhile
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
