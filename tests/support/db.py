"""Database helpers for tests: provision a database as the portal would, run SQL synchronously."""

from __future__ import annotations

import hashlib
import secrets

import psycopg2

from portal_core.testing.portal import provision

__all__ = ["create_token", "create_user", "provision", "run_sql"]


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
