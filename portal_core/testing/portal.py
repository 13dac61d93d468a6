"""Databases and apps for tests: a server, fresh databases on it, and the real app built on one.

Plain functions, so the fixtures in :mod:`portal_core.testing.plugin` and any other harness (a benchmark,
the portal's own tests) build things the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from portal_core.interfaces import User

SERVER_VARIABLE = "PORTAL_TEST_DATABASE_URL"
DEV_ENV = {"DEV_MODE": "true"}


class NoTestDatabase(Exception):
    """No PostgreSQL server could be reached or started for the tests; the message says what to do."""


def with_dbname(url: str, dbname: str) -> str:
    """``url`` naming database ``dbname`` instead (host, user and query such as ``?host=/socket`` kept)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def _admin(server_url: str):
    try:
        conn = psycopg2.connect(server_url, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        raise NoTestDatabase(f"PostgreSQL is unreachable at {server_url} ({str(exc).strip()}); set "
                             f"{SERVER_VARIABLE} to a server you may create databases on, or unset it to "
                             "have a throwaway one started from this machine's PostgreSQL binaries") from None
    conn.autocommit = True
    return conn


def check_server(server_url: str) -> str:
    """``server_url`` once a connection to it succeeded; :class:`NoTestDatabase` naming it otherwise."""
    _admin(server_url).close()
    return server_url


@contextlib.contextmanager
def database_server(data_dir: Path) -> Iterator[str]:
    """The admin URL of a server for test databases: ``PORTAL_TEST_DATABASE_URL`` when set, else a throwaway
    PostgreSQL under ``data_dir`` started the way DEV_MODE starts one (removed again afterwards)."""
    url = os.environ.get(SERVER_VARIABLE, "").strip()
    if url:
        yield check_server(url)
        return
    from portal_core.devdb import NoPostgres, throwaway_postgres

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres(data_dir, remove=True))
        except NoPostgres as exc:
            raise NoTestDatabase(f"{exc} (or set {SERVER_VARIABLE} to a server you may create databases on)") from None
        yield url


def create_database(server_url: str, *, template: str = "template0") -> str:
    """A new database on the server, a copy of ``template`` (by default empty); returns its URL."""
    name = "portal_t_" + uuid.uuid4().hex[:16]
    conn = _admin(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        conn.close()
    return with_dbname(server_url, name)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, even with connections still open to it."""
    name = urlsplit(url).path.lstrip("/")
    conn = _admin(with_dbname(url, "postgres"))
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def plugin_manager(env: Mapping[str, str], plugins: Iterable[object] = ()):
    """Every installed ``portal`` plugin (less PORTAL_DISABLE_PLUGINS) plus ``plugins``, as the CLI builds it."""
    from portal_core.plugins import make_plugin_manager

    disabled = [p.strip() for p in env.get("PORTAL_DISABLE_PLUGINS", "").split(",") if p.strip()]
    return make_plugin_manager(disabled, extra=plugins)


def app_env(database_url: str, data_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings a test portal runs with: DEV_MODE on this database and data directory, then ``env``."""
    return {**DEV_ENV, "DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(data_dir),
            "APP_BASE_URL": "http://127.0.0.1:8080", **(env or {})}


def provisioned_parts(database_url: str, env: Mapping[str, str] | None = None,
                      plugins: Iterable[object] = ()) -> list[tuple[str, str]]:
    """What a start with ``env`` and ``plugins`` applies: the core schema, then each plugin's SQL."""
    from portal_core.db import schema_parts
    from portal_core.settings import load_config

    plugins = list(plugins)
    pm = plugin_manager(env or {}, plugins)
    config = load_config({**DEV_ENV, **(env or {}), "DATABASE_URL": database_url}, pm)
    return schema_parts(pm, config)


async def provision(database_url: str, env: Mapping[str, str] | None = None, plugins: Iterable[object] = (), *,
                    parts: list[tuple[str, str]] | None = None) -> None:
    """Apply the embedded schema and every plugin's SQL (or ``parts``) to ``database_url``, exactly as a
    start would."""
    from portal_core import __version__
    from portal_core.db import apply_schema, create_pool

    if parts is None:
        parts = provisioned_parts(database_url, env, plugins)
    pool = await create_pool(database_url, connect_timeout=5)
    try:
        await apply_schema(pool, parts, version=__version__)
    finally:
        pool.close()
        await pool.wait_closed()


class Templates:
    """Provisioned databases of one test session, to copy: the schema is applied once per distinct set
    of parts (settings and plugins can add SQL) instead of once per test, and a test's database is a
    ``CREATE DATABASE ... TEMPLATE`` copy of it. The templates live only as long as the session (a later
    run may be a different build), and :meth:`drop` removes them."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self._made: dict[str, str] = {}  # hash of the parts -> the template's database name

    async def database(self, env: Mapping[str, str] | None = None, plugins: Iterable[object] = ()) -> str:
        """The URL of a new database with the schema ``env`` and ``plugins`` give already applied."""
        parts = provisioned_parts(with_dbname(self.server_url, "unused"), env, plugins)
        key = hashlib.sha256(repr(parts).encode()).hexdigest()
        if key not in self._made:
            url = create_database(self.server_url)
            try:
                await provision(url, parts=parts)
            except BaseException:
                drop_database(url)
                raise
            self._made[key] = urlsplit(url).path.lstrip("/")
        return create_database(self.server_url, template=self._made[key])

    def drop(self) -> None:
        for name in self._made.values():
            drop_database(with_dbname(self.server_url, name))
        self._made.clear()


def make_portal_app(database_url: str, data_dir: Path, env: Mapping[str, str] | None = None,
                    plugins: Iterable[object] = ()):
    """The application ``create_app`` builds for a DEV_MODE portal on ``database_url`` with ``env`` and the
    extra plugin objects ``plugins`` (a test plugin, a class instance with hookimpls). Not started yet."""
    from portal_core.app import create_app
    from portal_core.settings import load_config

    values = app_env(database_url, data_dir, env)
    pm = plugin_manager(values, list(plugins))
    return create_app(load_config(values, pm), pm)


def create_user(database_url: str, email: str = "ada@example.com", *, name: str | None = None,
                admin: bool = False) -> User:
    """A customer row as a development sign-in would make it; returns the :class:`User`."""
    name = name or email.split("@")[0]
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO users (issuer, subject, email, name, is_admin) VALUES ('dev', %s, %s, %s, %s) "
                        "RETURNING id", (email, email, name, admin))
            user_id = cur.fetchone()[0]
    finally:
        conn.close()
    return User(user_id, email, name, admin)


async def eventually(predicate, *, timeout: float = 10.0, every: float = 0.05, what: str = "the condition"):
    """Wait until ``predicate()`` (sync or async) returns something truthy; return it, or fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g}s")
        await asyncio.sleep(every)
