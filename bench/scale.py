"""Benchmark 6: how the cost of a request grows with data — 1,200,000 artifacts against a nearly empty database.

Two databases are seeded with SQL (generate_series, one statement per table) and served by two real
`portal` processes side by side:

* **large** — 10,000 users with 100 artifacts each (1,000,000) plus one user with 200,000, their rows
  interleaved in time the way uploads arrive, one ``artifact.created`` event per artifact, then VACUUM
  ANALYZE (what autovacuum would have done);
* **small** — the same seed with one user of 100 artifacts: the floor.

For each measure the three users (the small database's, the large database's ordinary user, the 200k user)
are asked in turn, request by request (order rotated), over one keep-alive connection each, so a busy
machine slows all three together; p50 and p99 are taken per run and the ratio to the small database's
figure per run. Measures: the first page of GET /api/artifacts and a deep cursor page, in each sort order
(date, name, size); a search (?q=); GET /api/me; a 1 KiB POST /api/artifacts (the upload commit) and the DELETE of that
artifact. Seeded rows have no stored objects; the bench only downloads nothing and deletes what it uploaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable

import aiohttp
import psycopg2

from portal_core.web.artifacts import decode_cursor, encode_cursor, listing
from tests.support.db import create_token, run_sql
from tests.support.portal import run_portal

from .harness import BenchError, Figure, Row, paired_ratio, scratch_database

USERS = 10_000
PER_USER = 100
BIG = 200_000
PAGE = 50
DEEP = 0.75  # the deep cursor sits this far into the big user's artifacts
READS = 200  # samples per read measure per run
WRITES = 100  # uploads (and deletes) per run
SEARCHES = 50  # searches per run: the 200k user's take ~0.5 s each (docs/benchmarks.md)
BUDGET = 1.5
UPLOAD = b"x" * 1024
SORTS = {"date": ("created_at", "desc", "created_at"), "name": ("name", "asc", "lower(name)"),
         "size": ("size", "desc", "size")}


def seed(database_url: str, *, users: int, per_user: int, big: int) -> tuple[int, int | None]:
    """Users 1..users with ``per_user`` artifacts each, and one more with ``big`` (when big > 0); events and
    every derived figure as the portal would have written them. Returns (an ordinary user's id, the big one's)."""
    normal = users * per_user
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute("""
                INSERT INTO users (issuer, subject, email, name, limit_quota, created_at)
                SELECT 'bench', 'user-' || n, 'user-' || n || '@example.com', 'User ' || n, 1125899906842624,
                       now() - interval '400 days'
                FROM generate_series(1, %s) AS n ORDER BY n""", (users + (1 if big else 0),))
            cur.execute("SELECT min(id), max(id) FROM users")
            first, last = cur.fetchone()
            # Ordinary rows go round the users; the big user's are spread evenly between them in time, so
            # every user's rows are scattered over the heap as interleaved uploads leave them.
            cur.execute("""
                INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key, created_at)
                SELECT gen_random_uuid(), owner, substr(md5(n::text), 1, 12) || '.bin', 1 + (n::bigint * 7919) %% 10485760,
                       'application/octet-stream', repeat('ab', 32), 'seed/' || n,
                       now() - interval '1 hour' - (%(total)s - pos) * interval '1 second'
                FROM (SELECT n, %(first)s + n %% %(users)s AS owner, n::float8 AS pos
                      FROM generate_series(0, %(normal)s - 1) AS n
                      UNION ALL
                      SELECT %(normal)s + j, %(last)s, j * (%(normal)s::float8 / %(big)s) + 0.5
                      FROM generate_series(0, %(big)s - 1) AS j) rows
                ORDER BY pos""", {"total": normal, "first": first, "last": last, "users": users, "normal": normal,
                                  "big": max(big, 1)})
            cur.execute("""
                INSERT INTO events (type, occurred_at, actor_id, owner_id, subject_id, data)
                SELECT 'artifact.created', created_at, owner_id, owner_id, id::text,
                       jsonb_build_object('name', name, 'size', size, 'content_type', content_type, 'sha256', sha256)
                FROM artifacts ORDER BY created_at""")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        conn.close()
    return first + users // 2, (last if big else None)


def deep_cursor(database_url: str, user_id: int, sort: str, position: int) -> str:
    """The cursor the API hands out after the artifact at ``position`` (0-based) in ``sort`` order."""
    column, order, key = SORTS[sort]
    rows = run_sql(database_url, f"SELECT {key}, created_at, id FROM artifacts WHERE owner_id = %s "
                                 f"ORDER BY {key} {order}, id {order} OFFSET %s LIMIT 1", (user_id, position))
    value, created_at, artifact_id = rows[0]
    text = created_at.isoformat() if column == "created_at" else str(value)
    return encode_cursor((column, order), text, str(artifact_id))


def search_term(database_url: str, user_id: int) -> str:
    """Six characters of one of the user's names: a search that finds a handful of their files."""
    return run_sql(database_url, "SELECT substr(name, 1, 6) FROM artifacts WHERE owner_id = %s "
                                 "ORDER BY created_at LIMIT 1", (user_id,))[0][0]


class Target:
    """One user of one portal: its token, an HTTP session, and the paths it reads."""

    def __init__(self, name: str, url: str, token: str, cursors: dict[str, str], term: str) -> None:
        self.name, self.url, self.cursors, self.term = name, url, cursors, term
        self.headers = {"Authorization": f"Bearer {token}"}
        self.session: aiohttp.ClientSession | None = None
        self.uploaded: list[str] = []

    async def timed(self, method: str, path: str, expect: int, **kwargs) -> tuple[float, bytes]:
        started = time.perf_counter()
        async with self.session.request(method, self.url + path, headers=self.headers, **kwargs) as response:
            body = await response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != expect:
            raise BenchError(f"{method} {path} on {self.name}: {response.status} {body[:300]!r}")
        return elapsed, body

    async def upload(self) -> float:
        form = aiohttp.FormData()
        form.add_field("file", UPLOAD, filename="bench.bin", content_type="application/octet-stream")
        elapsed, body = await self.timed("POST", "/api/artifacts", 201, data=form)
        import json
        self.uploaded.append(json.loads(body)["id"])
        return elapsed

    async def delete(self) -> float:
        return (await self.timed("DELETE", f"/api/artifacts/{self.uploaded.pop()}", 204))[0]


def measures(targets: list[Target]) -> dict[str, tuple[int, Callable[[Target], object]]]:
    """name → (samples per run, the request as a coroutine factory)."""
    def read(path_of: Callable[[Target], str], full: bool = True):
        async def go(t: Target) -> float:
            elapsed, body = await t.timed("GET", path_of(t), 200)
            if b'"artifacts"' in body and (body.count(b'"sha256"') != PAGE if full else b'"sha256"' not in body):
                raise BenchError(f"{path_of(t)} on {t.name} listed {body.count(b'sha256')} artifacts, not {PAGE}")
            return elapsed
        return go

    found: dict[str, tuple[int, Callable]] = {}
    for label, (column, order, _key) in SORTS.items():
        query = "" if column == "created_at" else f"?sort={column}&order={order}"
        found[f"listing, first page, by {label}"] = (READS, read(lambda t, q=query: "/api/artifacts" + q))
        joiner = "&" if query else "?"
        found[f"listing, deep cursor page, by {label}"] = (
            READS, read(lambda t, q=query, j=joiner, s=label: f"/api/artifacts{q}{j}cursor={t.cursors[s]}"))
    found["listing, search (?q= the first 6 characters of one name)"] = (
        SEARCHES, read(lambda t: f"/api/artifacts?q={t.term}", full=False))
    found["GET /api/me"] = (READS, read(lambda t: "/api/me"))
    found["upload commit: POST /api/artifacts, 1 KiB"] = (WRITES, Target.upload)
    found["DELETE /api/artifacts/{id}"] = (WRITES, Target.delete)
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(targets: list[Target], runs: int, log) -> dict[tuple[str, str, str], list[float]]:
    """(measure, target, 'p50'|'p99') → one figure per run."""
    figures: dict[tuple[str, str, str], list[float]] = {}
    connector = {t.name: aiohttp.TCPConnector(limit=1) for t in targets}
    async with contextlib.AsyncExitStack() as stack:
        for t in targets:
            t.session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector[t.name]))
        table = measures(targets)
        for name, (samples, call) in table.items():  # warm up: pools, prepared statements, caches
            for t in targets:
                for _ in range(5):
                    await call(t)
        for t in targets:  # the warm-up's uploads
            while t.uploaded:
                await t.delete()
        for run in range(runs):
            for name, (samples, call) in table.items():
                seen = {t.name: [] for t in targets}
                for i in range(samples):
                    for t in targets[i % len(targets):] + targets[:i % len(targets)]:
                        seen[t.name].append(await call(t))
                for t in targets:
                    figures.setdefault((name, t.name, "p50"), []).append(statistics.median(seen[t.name]))
                    figures.setdefault((name, t.name, "p99"), []).append(percentile(seen[t.name], 0.99))
            log(f"  run {run + 1}/{runs}: " + "; ".join(
                f"{name}: " + ", ".join(f"{t.name} {figures[(name, t.name, 'p50')][-1]:.1f}" for t in targets)
                for name in table) + " (p50, ms)")
    return figures


def explain(database_url: str, user_id: int, target: Target, token: str) -> dict[str, str]:
    """EXPLAIN ANALYZE of what could grow with the user's data: the listing's own prepared statements as the
    portal runs them (generic plans: the owner is only known when they execute), and the usage figures."""
    import hashlib

    plans = {}
    statements = {"listing, first page, by date": ("created_at", False, False),
                  "listing, deep cursor page, by date": ("created_at", True, False),
                  "listing, deep cursor page, by name": ("name", True, False),
                  "listing, search": ("created_at", False, True)}
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_generic_plan")
            for title, (column, after, search) in statements.items():
                label = next(k for k, v in SORTS.items() if v[0] == column)
                order = SORTS[label][1]
                statement = listing("token", column, order, after, search)
                params = {"credential": hashlib.sha256(token.encode()).digest(), "limit": PAGE}
                if after:
                    params["c_key"], params["c_id"] = decode_cursor(target.cursors[label], (column, order))
                if search:
                    params["q"] = f"%{target.term}%"
                cur.execute(statement.prepare_sql)
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement.execute_sql, params)
                plans[title] = "\n".join(r[0] for r in cur.fetchall())
            for title, sql in (("usage as a sum (before the running total)",
                                "SELECT COALESCE(sum(size), 0), count(*) FROM artifacts WHERE owner_id = %s"),
                               ("usage, the running total", "SELECT bytes_used, files_used FROM users WHERE id = %s")):
                cur.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, (user_id,))
                plans[title] = "\n".join(r[0] for r in cur.fetchall())
        conn.rollback()  # the token's last_used_at, touched by the listing's statement
    finally:
        conn.close()
    return plans


def run(runs: int, log) -> list[Row]:
    with scratch_database() as small_url, scratch_database() as large_url:
        started = time.monotonic()
        small_user, _ = seed(small_url, users=1, per_user=PER_USER, big=0)
        log(f"  seeded the small database in {time.monotonic() - started:.0f} s")
        started = time.monotonic()
        normal_user, big_user = seed(large_url, users=USERS, per_user=PER_USER, big=BIG)
        log(f"  seeded {USERS * PER_USER + BIG:,} artifacts in {time.monotonic() - started:.0f} s")
        env = {"LOG_LEVEL": "WARNING"}
        with run_portal(small_url, env) as small, run_portal(large_url, env) as large:
            users = [("small", small, small_url, small_user, PAGE), ("large", large, large_url, normal_user, PAGE),
                     ("200k", large, large_url, big_user, int(BIG * DEEP))]
            tokens = [create_token(url, user, "bench") for _name, _portal, url, user, _position in users]
            targets = [Target(name, portal.url, token, {s: deep_cursor(url, user, s, position - 1) for s in SORTS},
                              search_term(url, user))
                       for (name, portal, url, user, position), token in zip(users, tokens, strict=True)]
            for name, plan in explain(large_url, big_user, targets[2], tokens[2]).items():
                log(f"  EXPLAIN ({name}, the 200k user):\n" + "\n".join("    " + line for line in plan.splitlines()))
            figures = asyncio.run(measure(targets, runs, log))
    rows = []
    for name in measures(targets):
        for who, label in (("large", "ordinary user (100)"), ("200k", "the 200k user")):
            for stat in ("p50", "p99"):
                ratio = paired_ratio(figures[(name, who, stat)], figures[(name, "small", stat)])
                rows.append(Row(name=f"{name} — {label}, {stat}", unit="ms", portal=Figure(tuple(figures[(name, who, stat)])),
                                floor=Figure(tuple(figures[(name, "small", stat)])),
                                floor_name=f"the same, nearly empty database ({stat})", ratio=ratio,
                                budget=f"≤ {BUDGET}× floor", met=ratio.median <= BUDGET, fmt="{:,.2f}"))
    return rows


SETUP = (f"two real `portal` processes (DEV_MODE, local storage, LOG_LEVEL=WARNING), one per database: "
         f"{USERS:,} users × {PER_USER} artifacts + one user with {BIG:,} (and an artifact.created event each), "
         f"against one user with {PER_USER}; API token; one keep-alive connection per user, requests in turn; "
         f"{READS} samples per read ({SEARCHES} per search) and {WRITES} uploads + deletes per run; pages of {PAGE}; deep cursor: after "
         f"item {PAGE} (100-artifact users) or {int(BIG * DEEP):,} (the 200k user)")
