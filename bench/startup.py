"""Benchmark 3: exec of `portal` → /health answering 200, against `python -c "import aiohttp, aiopg, pluggy"`.

DEV_MODE against an already provisioned database (DATABASE_URL set), so the start re-applies the schema
and finds nothing to change; that apply's own time is read from the log line "schema ... applied in N ms"
and from /metrics (portal_schema_apply_seconds). One more start with -X importtime checks that the real
plugins' heavy libraries are not imported when they are not selected, and shows where import time goes.
"""

from __future__ import annotations

import http.client
import re
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.portal import start_portal

from .harness import BenchError, Figure, Row, cpu_seconds, paired_ratio, scratch_database

BUDGET = 1.2
SCHEMA_BUDGET_MS = 50
HEAVY = ("stripe", "aiobotocore", "botocore", "authlib", "joserfc")
POLL = 0.002  # seconds between /health attempts
OPS_TOKEN = "bench-ops-token-0123456789"  # /metrics answers only the operators' bearer token


def healthy(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/health")
        status = connection.getresponse().status
        connection.close()
        return status == 200
    except OSError:
        return False


ROOT = Path(__file__).resolve().parents[1]
# The portal as it ships (a regular, non-editable install, as in the Docker image): an editable install's
# import hook alone costs ~15 ms per start, which no deployment pays.
INSTALLED = ROOT / ".venvs" / "bench-portal"
PYTHON = INSTALLED / "bin" / "python"


def install_portal(log) -> None:
    """(Re)install the current tree into INSTALLED as a regular install; dependencies come once."""
    if not PYTHON.exists():
        subprocess.run([sys.executable, "-m", "venv", str(INSTALLED)], check=True)
        subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    else:
        # Dependencies added since the venv was made come first; then the portal itself, always afresh.
        subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", str(ROOT)], check=True)
        subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)],
                       check=True)
    log(f"  installed the current tree into {INSTALLED} (a regular install, as the image has it)")


def time_portal(database_url: str, env: dict[str, str] | None = None):
    """Seconds from exec to /health 200, CPU seconds the portal used until then, and the (still running)
    portal; the caller stops it."""
    started = time.perf_counter()
    portal = start_portal(database_url, {"LOG_LEVEL": "INFO", "OPS_TOKEN": OPS_TOKEN, **(env or {})}, wait=False,
                          portal_bin=INSTALLED / "bin" / "portal")
    deadline = started + 60
    while not healthy(portal.port):
        if portal.process.poll() is not None or time.perf_counter() > deadline:
            portal.stop()
            log_text = portal.log()
            portal.remove()
            raise BenchError(f"the portal did not become healthy:\n{log_text}")
        time.sleep(POLL)
    return time.perf_counter() - started, cpu_seconds(portal.pid), portal


FLOOR = "import aiohttp, aiopg, pluggy"
# Informative: the floor plus aiohttp's server half, which `import aiohttp` does not load and any server needs.
WEB_FLOOR = "import aiohttp.web, aiopg, pluggy"


def time_imports(statement: str = FLOOR) -> tuple[float, float]:
    """Seconds and CPU seconds of `python -c <statement>`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([str(PYTHON), "-c", statement], check=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def schema_figures(portal) -> tuple[float, float]:
    """(ms from the log line, ms from /metrics) of this start's schema apply."""
    logged = re.search(r"schema \w+ applied in (\d+) ms", portal.log())
    request = urllib.request.Request(portal.url + "/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        metrics = response.read().decode()
    exposed = re.search(r"^portal_schema_apply_seconds (\S+)$", metrics, re.MULTILINE)
    if logged is None or exposed is None:
        raise BenchError(f"no schema apply time in the log or /metrics:\n{portal.log()}")
    return float(logged.group(1)), float(exposed.group(1)) * 1000


def import_report(database_url: str) -> str:
    """Start once with PYTHONPROFILEIMPORTTIME: fail if a heavy library loaded; name the slowest imports."""
    _seconds, _cpu, portal = time_portal(database_url, {"PYTHONPROFILEIMPORTTIME": "1"})
    portal.stop()
    log_text = portal.log()
    portal.remove()
    rows = re.findall(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", log_text)
    loaded = {name for _self, _cum, _indent, name in rows}
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    if heavy:
        raise BenchError(f"DEV_MODE start imported the real plugins' libraries: {', '.join(heavy)}")
    top = sorted(((int(cum), name) for _self, cum, indent, name in rows if len(indent) == 1), reverse=True)[:6]
    total = sum(int(cum) for _self, cum, indent, name in rows if len(indent) == 1)
    shown = ", ".join(f"{name} {cum / 1000:.0f} ms" for cum, name in top)
    return (f"-X importtime: {len(loaded)} modules, {total / 1000:.0f} ms of top-level imports; none of "
            f"{', '.join(HEAVY)}; largest: {shown}")


def run(runs: int, log) -> tuple[list[Row], str]:
    install_portal(log)
    with scratch_database() as database_url:
        for _ in range(2):  # warm the page cache and bytecode
            time_imports()
            warm = time_portal(database_url)[2]
            warm.stop()
            warm.remove()
        starts, imports, logged, exposed, cpu, imports_cpu, web = [], [], [], [], [], [], []
        for i in range(runs):
            order = ["portal", "imports", "web"]
            for name in order[i % 3:] + order[:i % 3]:  # rotate who goes first
                if name == "web":
                    web.append(time_imports(WEB_FLOOR)[0])
                elif name == "imports":
                    seconds, used = time_imports()
                    imports.append(seconds)
                    imports_cpu.append(used)
                else:
                    seconds, used, portal = time_portal(database_url)
                    cpu.append(used)
                    try:
                        schema_log, schema_metric = schema_figures(portal)
                    finally:
                        portal.stop()
                        portal.remove()
                    starts.append(seconds)
                    logged.append(schema_log)
                    exposed.append(schema_metric)
            log(f"  run {i + 1}/{runs}: portal {starts[-1] * 1000:.0f} ms ({cpu[-1] * 1000:.0f} ms CPU), imports "
                f"{imports[-1] * 1000:.0f} ms ({imports_cpu[-1] * 1000:.0f} ms CPU), with aiohttp.web {web[-1] * 1000:.0f} ms, schema re-apply {exposed[-1]:.1f} ms")
        report = import_report(database_url)
    ratio = paired_ratio(starts, imports)
    schema = Figure(tuple(exposed))
    return [
        Row(name="start: exec of `portal` → /health 200 (DEV_MODE, provisioned DB)", unit="ms",
            portal=Figure(tuple(s * 1000 for s in starts)), floor=Figure(tuple(s * 1000 for s in imports)),
            floor_name=f'python -c "{FLOOR}"', ratio=ratio, budget=f"≤ {BUDGET}× floor",
            met=ratio.median <= BUDGET),
        Row(name="… the same starts (informative floor)", unit="ms", portal=Figure(tuple(s * 1000 for s in starts)),
            floor=Figure(tuple(s * 1000 for s in web)), floor_name=f'python -c "{WEB_FLOOR}"',
            ratio=paired_ratio(starts, web), budget="(informative)", met=True),
        Row(name="… CPU time of the same starts (informative: steadier on a busy machine)", unit="ms",
            portal=Figure(tuple(s * 1000 for s in cpu)), floor=Figure(tuple(s * 1000 for s in imports_cpu)),
            floor_name="the same imports", ratio=paired_ratio(cpu, imports_cpu), budget="(informative)", met=True),
        Row(name="schema re-apply on a provisioned database (/metrics; the log agrees: "
                 f"{Figure(tuple(logged)).show('{:.0f}')} ms)", unit="ms", portal=schema, floor=None,
            floor_name="", ratio=None, budget=f"< {SCHEMA_BUDGET_MS} ms", met=max(schema.values) < SCHEMA_BUDGET_MS,
            fmt="{:.1f}"),
    ], report


SETUP = (f"/health polled every {POLL * 1000:.0f} ms; the portal installed as it ships (non-editable, "
         f".venvs/bench-portal) and the floor run by that same venv's Python")
