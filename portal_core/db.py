"""The PostgreSQL pool and the schema applied at every start.

The schema is applied in ONE transaction holding a transaction-scoped advisory lock, so several pods
starting at once never race (concurrent ``CREATE TABLE IF NOT EXISTS`` otherwise fails with a
duplicate key on pg_type), and plugin SQL lands atomically with the core's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import weakref
from collections.abc import Iterator, Sequence
from importlib import resources
from urllib.parse import urlsplit

import aiopg
import attrs
import psycopg2
import psycopg2.errors

from . import sqltext
from .retrying import doubling, jittered
from .redact import mask, secret_parts

log = logging.getLogger("portal.db")

# Any constant works as long as every portal build uses the same one: it is the lock they queue on.
SCHEMA_LOCK_ID = 0x706F7274616C  # "portal"


class DatabaseUnavailable(Exception):
    """The database could not be reached within the connect timeout."""


def core_schema() -> str:
    """The schema.sql embedded in the installed package."""
    return resources.files("portal_core.resources").joinpath("schema.sql").read_text(encoding="utf-8")


def describe_target(dsn: str) -> str:
    """host:port/dbname of a DSN, for messages that must not leak the password."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost (unix socket)"
        return f"{host}:{parts.port or 5432}{parts.path or ''}"
    except ValueError:  # a malformed URL (its port, an IPv6 bracket): say only that
        return "(a malformed DATABASE_URL)"


# libpq TCP keepalives: a pooled connection whose server vanished without closing it (a host crash, a
# failover to another machine, a NAT forgetting the flow) is found dead by the kernel within about a
# minute, while idle, instead of stalling the request that next picks it. A clean restart needs nothing:
# the server closes the sockets, aiopg sees it at once and the pool replaces those connections.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


async def create_pool(dsn: str, *, connect_timeout: float, minsize: int = 1, maxsize: int = 10) -> aiopg.Pool:
    """Open the pool, retrying for up to ``connect_timeout`` seconds while the database is unreachable.

    Later outages need no action: a broken connection is dropped from the pool when it is found closed,
    and new ones are opened on demand once the server is back (until then, acquiring one fails fast).
    """
    deadline = time.monotonic() + connect_timeout
    delays = connect_delays()
    # Keepalive settings written in DATABASE_URL win over ours.
    keepalives = {k: v for k, v in KEEPALIVES.items() if k not in dsn}
    while True:
        try:
            return await aiopg.create_pool(dsn, minsize=minsize, maxsize=maxsize, timeout=10,
                                           pool_recycle=300, **keepalives)
        except (psycopg2.OperationalError, psycopg2.ProgrammingError, OSError, asyncio.TimeoutError) as exc:
            # libpq may quote the DSN, or a piece of it, in its complaint.
            reason = mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                          secret_parts(dsn))
            if isinstance(exc, psycopg2.ProgrammingError):  # a DSN libpq cannot read: retrying cannot help
                raise DatabaseUnavailable(f"DATABASE_URL cannot be used: {reason} "
                                          f"(DATABASE_URL={mask(dsn, secret_parts(dsn))})") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseUnavailable(
                    f"database at {describe_target(dsn)} unreachable after {connect_timeout:g}s: {reason} "
                    f"(DATABASE_URL={mask(dsn, secret_parts(dsn))})") from None
            log.warning("database at %s unreachable (%s); retrying for up to %.0fs more",
                        describe_target(dsn), reason, left)
            await asyncio.sleep(min(next(delays), max(left, 0.05)))


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# The names PREPAREd on each pooled connection; an entry goes away with its connection.
_PREPARED: weakref.WeakKeyDictionary[object, set[str]] = weakref.WeakKeyDictionary()


class Prepared:
    """A hot read PostgreSQL plans once per connection, then only executes.

    Planning a query with several CTEs costs PostgreSQL more than running it, so the first use on a
    pooled connection sends ``PREPARE name AS ...`` and every use sends ``EXECUTE name (...)``. Write the
    SQL with ``%(name)s`` placeholders (``%%`` for a literal %) and pass a dict, as for ``cur.execute``.
    Use it outside explicit transactions (aiopg's autocommit): a PREPARE inside one that rolls back is lost.
    """

    def __init__(self, name: str, sql: str) -> None:
        self.sql = sql
        names = list(dict.fromkeys(_PLACEHOLDER.findall(sql)))
        numbered = _PLACEHOLDER.sub(lambda m: f"${names.index(m.group(1)) + 1}", sql).replace("%%", "%")
        self.name = name
        self.prepare_sql = f"PREPARE {name} AS {numbered}"
        self.execute_sql = f"EXECUTE {name} ({', '.join(f'%({n})s' for n in names)})" if names else f"EXECUTE {name}"

    async def execute(self, cur, params: dict, *, prepare: bool = True) -> None:
        """Run the statement on ``cur``'s connection, preparing it there first if needed.

        ``prepare=False`` (DATABASE_PREPARE_STATEMENTS=false) sends the plain statement instead: behind a
        pooler in transaction mode (PgBouncer), a session's prepared statements are not where EXECUTE goes.
        """
        if not prepare:
            await cur.execute(self.sql, params)
            return
        prepared = _PREPARED.setdefault(cur.connection, set())
        if self.name not in prepared:
            await cur.execute(self.prepare_sql)
            prepared.add(self.name)
        try:
            await cur.execute(self.execute_sql, params)
        except (psycopg2.errors.InvalidSqlStatementName, psycopg2.errors.FeatureNotSupported):
            # The session lost the statement (a pooler's DISCARD ALL) or a schema change altered its
            # result type ("cached plan must not change result type"): plan it afresh, once.
            await cur.execute("DEALLOCATE ALL")
            prepared.clear()
            await cur.execute(self.prepare_sql)
            prepared.add(self.name)
            await cur.execute(self.execute_sql, params)


@attrs.frozen
class SchemaApplied:
    """What an apply did: the combined hash, whether this build/hash was newly recorded, and how long it took."""

    schema_hash: str
    recorded: bool
    seconds: float


def schema_hash(parts: Sequence[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, sql in parts:
        digest.update(name.encode() + b"\0" + sql.encode() + b"\0")
    return digest.hexdigest()


# While the schema is applied, a DDL statement that has to wait for a lock (traffic holds the table) gives
# up after this long instead of queueing: the apply rolls back, releasing what it held, and tries again.
# Shorter than PostgreSQL's deadlock_timeout (1 s), so in a lock cycle with a request it is the schema
# apply that yields, never the customer's request.
SCHEMA_LOCK_TIMEOUT_MS = 200
SCHEMA_RETRY_SECONDS = 120.0
_YIELD_TO_TRAFFIC = (psycopg2.errors.LockNotAvailable, psycopg2.errors.DeadlockDetected)


async def apply_schema(pool: aiopg.Pool, parts: Sequence[tuple[str, str]], *, version: str,
                       retry_for: float = SCHEMA_RETRY_SECONDS) -> SchemaApplied:
    """Apply ``parts`` ((source name, SQL) — the core schema first, then plugins') in one locked transaction.

    A row is added to ``schema_applies`` when this (hash, version) differs from the last recorded one,
    so an operator sees which build last provisioned the database. When the last recorded apply is this
    very (hash, version) — a restart, another pod of the same build — nothing is executed at all, so
    scaling out takes no table locks. Otherwise the DDL runs with a short lock_timeout and the whole
    apply is retried (for up to ``retry_for`` seconds) whenever it would have had to wait for traffic.
    """
    started = time.perf_counter()
    deadline = time.monotonic() + retry_for
    delays = retry_delays()
    while True:
        try:
            digest, recorded = await _apply_once(pool, parts, version=version)
            return SchemaApplied(digest, recorded, time.perf_counter() - started)
        except _YIELD_TO_TRAFFIC as exc:
            delay = next(delays)
            if time.monotonic() + delay > deadline:
                raise RuntimeError(f"applying the schema kept waiting for locks held by traffic for "
                                   f"{retry_for:g}s; last: {str(exc).strip().splitlines()[0]}") from exc
            log.info("schema apply yielded to traffic holding a lock (%s); retrying in %.2fs",
                     type(exc).__name__, delay)
            await asyncio.sleep(jittered(delay, 0.5))  # pods that yielded together retry apart


def retry_delays() -> Iterator[float]:
    """The pause before each retry of a schema apply that yielded to traffic: 50 ms, doubling, at most 2 s
    (short at first: the lock it waited for is usually a request's, gone in milliseconds)."""
    return doubling(0.05, 2.0)


def connect_delays() -> Iterator[float]:
    """The pause before each new try to reach an unreachable database at start: 250 ms, doubling, at most 2 s."""
    return doubling(0.25, 2.0)


async def _apply_once(pool: aiopg.Pool, parts: Sequence[tuple[str, str]], *, version: str) -> tuple[str, bool]:
    digest = schema_hash(parts)
    names = [name for name, _sql in parts]
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
            if await _last_apply(cur) == (digest, version):
                return digest, False
            await cur.execute(f"SET LOCAL lock_timeout = {SCHEMA_LOCK_TIMEOUT_MS}")
            done = await _catalog(cur)
            for name, sql in parts:
                pending = [s for s in sqltext.statements(sql) if not _already_done(s, done)]
                if not pending:
                    continue
                try:
                    await cur.execute(";\n".join(pending))
                except _YIELD_TO_TRAFFIC:
                    raise
                except psycopg2.Error as exc:
                    raise RuntimeError(f"applying schema from {name} failed: {exc}".strip()) from exc
            await cur.execute(
                "INSERT INTO schema_applies (schema_hash, portal_version, plugins) VALUES (%s, %s, %s)",
                (digest, version, names))
    return digest, True


async def _catalog(cur) -> set[tuple[str, ...]]:
    """The indexes ((name,)) and columns ((table, column)) that already exist in the schemas on the search path."""
    await cur.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(current_schemas(false)) AND c.relkind IN ('i', 'I')")
    found: set[tuple[str, ...]] = {(row[0],) for row in await cur.fetchall()}
    await cur.execute("SELECT table_name, column_name FROM information_schema.columns "
                      "WHERE table_schema = ANY(current_schemas(false))")
    found.update((row[0], row[1]) for row in await cur.fetchall())
    return found


def _already_done(statement: str, done: set[tuple[str, ...]]) -> bool:
    """A CREATE INDEX / ADD COLUMN IF NOT EXISTS whose object exists: skipped, so it takes no table lock."""
    index = sqltext.index_created(statement)
    if index is not None:
        return (index.lower(),) in done
    column = sqltext.column_added(statement)
    return column is not None and (column[0].lower(), column[1].lower()) in done


async def _last_apply(cur) -> tuple[str, str] | None:
    """The (hash, version) of the newest recorded apply, or None on an empty database."""
    await cur.execute("SELECT to_regclass('schema_applies') IS NOT NULL")
    if not (await cur.fetchone())[0]:
        return None
    await cur.execute("SELECT schema_hash, portal_version FROM schema_applies ORDER BY id DESC LIMIT 1")
    return await cur.fetchone()


def schema_parts(pm, config) -> list[tuple[str, str]]:
    """The core schema, then each plugin's ``portal_schema_sql`` contribution, in registration order."""
    parts = [("schema.sql", core_schema())]
    for impl in pm.hook.portal_schema_sql.get_hookimpls():
        sql = impl.function(config=config)
        if sql and sql.strip():
            parts.append((f"plugin {impl.plugin_name}", sql))
    return parts
