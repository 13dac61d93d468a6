"""Server-side sessions in PostgreSQL, API-token authentication, and CSRF.

The cookie carries a random 256-bit id; the database keeps only its SHA-256, so any portal process
sharing the database can serve any browser, and a copy of the table replays nothing. A session with no
user is a pre-login session: it carries the login state between /auth/login and /auth/callback.
Anything the identity provider hands back (the OIDC id_token) lives in ``data``, never in the cookie.

Whatever the credential, the query that reads it also reads whether its user is frozen and, for an API
token, its scopes and expiry, so one round trip decides, on every process at once (:func:`admit`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import Any

import attrs
from aiohttp import web

from .. import keys
from ..events import record_now
from ..interfaces import User
from .errors import ApiError, forbidden, unauthenticated
from .inputs import form, same_secret

COOKIE = "portal_session"
TOKEN_PREFIX = "pt_"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# last_seen_at / last_used_at are refreshed at most this often, so authenticated reads stay reads.
TOUCH_INTERVAL = "60 seconds"


def digest(secret: str) -> bytes:
    # Any text: a cookie or header of raw non-UTF-8 bytes arrives with surrogate escapes, hashes to a
    # credential nobody has, and so is simply not signed in.
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


@attrs.define
class Session:
    id_hash: bytes
    user_id: int | None
    csrf_token: str
    data: dict[str, Any]


# What an API token may be used for. A session may do whatever its user may.
READ = "artifacts:read"
WRITE = "artifacts:write"
ADMIN = "admin"
SCOPES = (READ, WRITE, ADMIN)
DEFAULT_SCOPES = (READ, WRITE)
# authenticate()'s default scope: artifacts:read for safe methods, artifacts:write for the others.
BY_METHOD = "by-method"


@attrs.frozen
class Principal:
    """Who is making this request, and how they proved it ("session" or "token").

    ``scopes`` are the token's (None for a session: everything its user may do). The rest is the
    credential's standing as the database saw it in the same query, for :func:`admit` to act on.
    """

    user: User
    via: str
    session: Session | None = None
    scopes: tuple[str, ...] | None = None
    token_id: str | None = None
    token_name: str | None = None
    frozen: bool = False
    expired: bool = False
    expires_at: dt.datetime | None = None
    touched: bool = False


# Each credential becomes a CTE named `who` (user_id, csrf_token, data, session_hash, scopes, expired,
# expires_at, token_id, token_name, touched), refreshing the last-seen time in the same statement, so a view
# can join its own query to it: one round trip. A token's last_used_at is refreshed only while it is live
# (unexpired, its user not frozen); `touched` says this request refreshed it (then a token.used event is due).
SESSION_WHO = f"""
    s AS (SELECT id_hash, user_id, csrf_token, data, last_seen_at FROM sessions
          WHERE id_hash = %(credential)s
            AND last_seen_at > now() - make_interval(secs => %(idle)s)
            AND created_at > now() - make_interval(secs => %(max_age)s)),
    touch AS (UPDATE sessions SET last_seen_at = now() FROM s
              WHERE sessions.id_hash = s.id_hash AND s.last_seen_at < now() - interval '{TOUCH_INTERVAL}'
              RETURNING 1),
    who AS (SELECT user_id, csrf_token, data, id_hash AS session_hash, NULL::text[] AS scopes, false AS expired,
                   NULL::timestamptz AS expires_at, NULL::text AS token_id, NULL::text AS token_name,
                   false AS touched FROM s)"""

TOKEN_WHO = f"""
    k AS (SELECT id, user_id, name, last_used_at, scopes, expires_at, COALESCE(expires_at <= now(), false) AS expired
          FROM api_tokens WHERE token_hash = %(credential)s),
    touch AS (UPDATE api_tokens SET last_used_at = now() FROM k
              WHERE api_tokens.id = k.id AND NOT k.expired
                AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '{TOUCH_INTERVAL}')
                AND NOT EXISTS (SELECT 1 FROM users WHERE users.id = k.user_id AND users.frozen_at IS NOT NULL)
              RETURNING 1),
    who AS (SELECT user_id, NULL::text AS csrf_token, NULL::jsonb AS data, NULL::bytea AS session_hash, scopes,
                   expired, expires_at, id::text AS token_id, name AS token_name,
                   EXISTS (SELECT 1 FROM touch) AS touched FROM k)"""

# Select these from `who LEFT JOIN users u ON u.id = who.user_id`; principal_from_row reads them.
WHO_COLUMNS = ("who.user_id, who.csrf_token, who.data, who.session_hash, u.email, u.name, "
               "(u.is_admin OR u.admin_granted), u.frozen_at IS NOT NULL, who.scopes, who.expired, who.expires_at, "
               "who.token_id, who.token_name, who.touched")
WHO_WIDTH = 14


@attrs.frozen
class Credential:
    """What the request presented: a bearer token or a session cookie (hashed), with its CTE."""

    via: str
    params: dict[str, Any]

    @property
    def cte(self) -> str:
        return TOKEN_WHO if self.via == "token" else SESSION_WHO


def credential(request: web.Request, *, allow_token: bool = True) -> Credential | None:
    """The request's credential, or None. A malformed Authorization header is an error, not anonymity."""
    core = request.app[keys.CONFIG].core
    header = request.headers.get("Authorization")
    if header is not None and allow_token:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip().startswith(TOKEN_PREFIX):
            raise unauthenticated()
        return Credential("token", {"credential": digest(token.strip())})
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    return Credential("session", {"credential": digest(cookie), "idle": core.session_idle_seconds,
                                  "max_age": core.session_max_age_seconds})


def principal_from_row(cred: Credential, row) -> Principal | None:
    """Build the Principal from the WHO_COLUMNS prefix of a row (None when no signed-in user)."""
    (user_id, csrf, data, session_hash, email, name, is_admin, frozen, scopes, expired, expires_at, token_id,
     token_name, touched) = row[:WHO_WIDTH]
    if user_id is None or email is None:
        return None
    user = User(user_id, email, name, bool(is_admin))
    session = Session(bytes(session_hash), user_id, csrf, data or {}) if cred.via == "session" else None
    return Principal(user, cred.via, session, tuple(scopes) if scopes is not None else None, token_id, token_name,
                     bool(frozen), bool(expired), expires_at, bool(touched))


def suspended() -> ApiError:
    return ApiError(401, "suspended", "this account is suspended; contact the portal's administrators")


def required_scope(method: str, scope: str | None) -> str | None:
    if scope == BY_METHOD:
        return READ if method in SAFE_METHODS else WRITE
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}: one of {SCOPES}, None or BY_METHOD")
    return scope


async def admit(request: web.Request, principal: Principal, scope: str | None = BY_METHOD) -> None:
    """The checks every authenticated request passes, whichever query loaded the principal.

    Frozen user → 401 "this account is suspended"; expired token → 401; the admin scope asked of a
    non-admin → 404 (admin routes do not exist for them); a token without the scope → 403; then CSRF.
    """
    if principal.frozen:
        raise suspended()
    if principal.expired:
        when = principal.expires_at.isoformat() if principal.expires_at else "some time ago"
        raise ApiError(401, "token_expired", f"this API token expired at {when}; create a new one on the account page")
    if principal.touched:
        # At most once a minute per token (when last_used_at was refreshed): the customer's activity shows it.
        await record_now(request.app[keys.POOL], "token.used", actor_id=principal.user.id, owner_id=principal.user.id,
                         subject_id=principal.token_id, data={"name": principal.token_name})
    required = required_scope(request.method, scope)
    if required == ADMIN and not principal.user.is_admin:
        # Exactly what an address that does not exist answers: admin pages do not exist for others.
        raise web.HTTPNotFound()
    if principal.scopes is not None and required is not None and required not in principal.scopes:
        raise forbidden(f"this API token lacks the '{required}' scope (it has: {', '.join(principal.scopes) or 'none'}); "
                        "create a token with it on the account page", code="insufficient_scope")
    await check_csrf(request, principal)


async def authenticate(request: web.Request, *, allow_token: bool = True, scope: str | None = BY_METHOD) -> Principal:
    """The signed-in principal, checked for what this request needs (see :func:`admit`); 401/403/404 otherwise.

    ``scope``: the token scope the route needs — by default artifacts:read for GET/HEAD/OPTIONS and
    artifacts:write for other methods; ``ADMIN`` for admin routes (also refuses non-admins with 404);
    None when any live credential will do (``/api/me``).
    """
    cred = credential(request, allow_token=allow_token)
    if cred is None:
        raise unauthenticated()
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"WITH {cred.cte} SELECT {WHO_COLUMNS} FROM who LEFT JOIN users u ON u.id = who.user_id",
                          cred.params)
        row = await cur.fetchone()
    principal = principal_from_row(cred, row) if row else None
    if principal is None:
        raise unauthenticated()
    await admit(request, principal, scope)
    return principal


async def check_csrf(request: web.Request, principal: Principal) -> None:
    """State-changing requests authenticated by the cookie must carry the session's CSRF token."""
    if principal.via != "session" or request.method in SAFE_METHODS:
        return
    sent = request.headers.get("X-CSRF-Token")
    if sent is None and request.content_type == "application/x-www-form-urlencoded":
        sent = (await form(request)).get("csrf_token")
    if not sent or not same_secret(str(sent), principal.session.csrf_token):
        raise forbidden("missing or wrong CSRF token: send the csrf_token from GET /api/me "
                        "as the X-CSRF-Token header (or a csrf_token form field)", code="csrf")


# ---------------------------------------------------------------------------------------------------
# Session lifecycle


def set_cookie(response: web.StreamResponse, request: web.Request, secret: str) -> None:
    core = request.app[keys.CONFIG].core
    response.set_cookie(COOKIE, secret, httponly=True, samesite="Lax", secure=core.secure_cookies, path="/",
                        max_age=core.session_max_age_seconds)


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


async def load_session(request: web.Request) -> Session | None:
    """The browser's live session (signed in or pre-login), or None."""
    cred = credential(request, allow_token=False)
    if cred is None:
        return None
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"WITH {cred.cte} SELECT who.user_id, who.csrf_token, who.data, who.session_hash FROM who",
                          cred.params)
        row = await cur.fetchone()
    if row is None:
        return None
    return Session(bytes(row[3]), row[0], row[1], row[2] or {})


async def create_session(request: web.Request, *, user_id: int | None, data: dict[str, Any],
                         replacing: Session | None = None) -> str:
    """Start a new session (a fresh id — never reuse one across sign-in) and return the cookie secret."""
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            return await create_session_in(cur, user_id=user_id, data=data, replacing=replacing)


async def create_session_in(cur, *, user_id: int | None, data: dict[str, Any], replacing: Session | None = None) -> str:
    """:func:`create_session` inside the caller's transaction (sign-in writes the user, session and events at once)."""
    secret = secrets.token_urlsafe(32)
    if replacing is not None:
        await cur.execute("DELETE FROM sessions WHERE id_hash = %s", (replacing.id_hash,))
    await cur.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, data) VALUES (%s, %s, %s, %s)",
        (digest(secret), user_id, secrets.token_urlsafe(32), json.dumps(data)))
    return secret


async def save_data(request: web.Request, session: Session) -> None:
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("UPDATE sessions SET data = %s WHERE id_hash = %s", (json.dumps(session.data), session.id_hash))


async def purge_expired(pool, *, idle_seconds: int, max_age_seconds: int) -> int:
    """Delete sessions past their idle or absolute expiry (they can never be used again); returns how many."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "DELETE FROM sessions WHERE last_seen_at < now() - make_interval(secs => %s) "
            "OR created_at < now() - make_interval(secs => %s)", (idle_seconds, max_age_seconds))
        return cur.rowcount
