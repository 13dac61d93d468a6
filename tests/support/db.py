"""Database helpers for tests: provision a database as the portal would, run SQL synchronously."""

from __future__ import annotations

import hashlib
import secrets

import psycopg2

from portal_core import __version__
from portal_core.db import apply_schema, create_pool, schema_parts
from portal_core.plugins import make_plugin_manager
from portal_core.settings import load_config

DEV_ENV = {"DEV_MODE": "true"}


async def provision(database_url: str) -> None:
    """Apply the embedded schema and every built-in plugin's SQL, exactly as a start would."""
    pm = make_plugin_manager()
    config = load_config({**DEV_ENV, "DATABASE_URL": database_url}, pm)
    pool = await create_pool(database_url, connect_timeout=5)
    try:
        await apply_schema(pool, schema_parts(pm, config), version=__version__)
    finally:
        pool.close()
        await pool.wait_closed()


def run_sql(database_url: str, query: str, params=()):
    """Execute one statement in its own transaction; the rows when it returns any, else None."""
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def create_user(database_url: str, *, email: str = "ada@example.com", name: str = "Ada",
                is_admin: bool = False, issuer: str = "test") -> int:
    """Insert a user row directly (as a sign-in would) and return its id."""
    rows = run_sql(database_url,
                   "INSERT INTO users (issuer, subject, email, name, is_admin) VALUES (%s, %s, %s, %s, %s) "
                   "RETURNING id", (issuer, email, email, name, is_admin))
    return rows[0][0]


def create_token(database_url: str, user_id: int, name: str = "test", *, scopes: list[str] | None = None) -> str:
    """Create an API token for ``user_id`` the way POST /api/tokens stores it; returns the secret.

    ``scopes`` default to the column's default (artifacts:read and artifacts:write).
    """
    from portal_core.web.sessions import TOKEN_PREFIX

    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_hash = hashlib.sha256(secret.encode()).digest()
    if scopes is None:
        run_sql(database_url, "INSERT INTO api_tokens (user_id, name, token_hash) VALUES (%s, %s, %s)",
                (user_id, name, token_hash))
    else:
        run_sql(database_url, "INSERT INTO api_tokens (user_id, name, token_hash, scopes) VALUES (%s, %s, %s, %s)",
                (user_id, name, token_hash, scopes))
    return secret
