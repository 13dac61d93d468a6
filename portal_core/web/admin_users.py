"""/api/admin/users: list and search users, one user in detail, freeze and limit overrides, erasure.

Only admins reach these (``authenticate(..., scope=ADMIN)``: anyone else gets the 404 of an address that
does not exist); the changes themselves are in :mod:`portal_core.accounts`, shared with ``portal admin``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from aiohttp import web

from .. import accounts, keys
from ..config import parse_size
from ..events import EVENT_COLUMNS, Event
from ..interfaces import ServiceUnavailable, User
from ..openapi import operation
from ..plans import FREE, PLAN_APPLIES, effective_plan
from .artifacts import parse_limit
from .errors import ApiError, bad_request, not_found, unavailable
from .inputs import json_object
from .sessions import ADMIN, authenticate
from .tokens import TOKEN, TOKEN_COLUMNS, token_json
from .upload import limits_for

MAX_SEARCH = 254
MAX_LIMIT_BYTES = 2**63 - 1
RECENT_EVENTS = 20

LIMITS = {"type": ["object", "null"], "properties": {
    "max_file": {"type": ["integer", "null"]}, "quota": {"type": ["integer", "null"]}}}
USER = {"type": "object", "properties": {
    "id": {"type": "integer"}, "email": {"type": "string"}, "name": {"type": "string"},
    "is_admin": {"type": "boolean"}, "admin_granted": {"type": "boolean"},
    "plan": {"type": "string"}, "subscription_status": {"type": "string"},
    "usage": {"type": "object", "properties": {"bytes": {"type": "integer"}, "files": {"type": "integer"}}},
    "created_at": {"type": "string", "format": "date-time"},
    "last_sign_in_at": {"type": ["string", "null"], "format": "date-time"},
    "frozen": {"type": "boolean"}, "frozen_at": {"type": ["string", "null"], "format": "date-time"},
    "limits_override": LIMITS}}

_SELECT = """
    SELECT u.id, u.email, u.name, u.is_admin OR u.admin_granted, u.admin_granted, u.created_at, u.last_sign_in_at,
           u.frozen_at, u.limit_max_file, u.limit_quota, s.plan, s.status,
           u.bytes_used, u.files_used
    FROM users u
    LEFT JOIN subscriptions s ON s.user_id = u.id"""


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def user_json(row) -> dict[str, Any]:
    (user_id, email, name, is_admin, granted, created_at, last_sign_in_at, frozen_at, max_file, quota, plan, status,
     used, files) = row
    override = None if max_file is None and quota is None else {"max_file": max_file, "quota": quota}
    return {"id": user_id, "email": email, "name": name, "is_admin": bool(is_admin), "admin_granted": bool(granted),
            "plan": effective_plan(plan, status).name, "subscription_status": status or "none",
            "usage": {"bytes": int(used), "files": int(files)}, "created_at": created_at.isoformat(),
            "last_sign_in_at": _iso(last_sign_in_at), "frozen": frozen_at is not None, "frozen_at": _iso(frozen_at),
            "limits_override": override}


def _search(raw: str | None) -> str | None:
    """?q= as an ILIKE pattern over email and name, or None."""
    if raw is None or not raw.strip():
        return None
    text = unicodedata.normalize("NFC", raw.strip())
    if len(text) > MAX_SEARCH or any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise bad_request(f"q must be printable text of at most {MAX_SEARCH} characters", code="bad_query")
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _flag(raw: str | None, name: str) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise bad_request(f"{name} must be true or false", code=f"bad_{name}")
    return raw == "true"


def _user_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdecimal() or len(raw) > 18:
        raise not_found("user")
    return int(raw)


async def _known_plan(app: web.Application, plan: str) -> None:
    """?plan= names free, a plan the billing backend offers, or one some subscription still has; 400 otherwise."""
    offered = (FREE, *app[keys.BILLING].plans())
    if plan in offered:
        return
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM subscriptions WHERE plan = %s LIMIT 1", (plan,))
        if await cur.fetchone() is not None:
            return
    shown = plan if len(plan) <= 40 and plan.isprintable() else plan[:40].encode("unicode_escape").decode() + "…"
    raise bad_request(f"plan must be one of: {', '.join(offered)} (no plan is called {shown!r})", code="bad_plan")


@operation("List users: email, name, plan, usage, sign-ins, frozen, limit override (admins only)", tags=["admin"],
           auth="admin",
           query={"q": {"type": "string", "description": "part of the email or name, any case"},
                  "plan": {"type": "string", "description": "only users on this plan (free, pro, ...)"},
                  "frozen": {"type": "boolean"}, "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                  "cursor": {"type": "string", "description": "next_cursor of the previous page"}},
           response={"type": "object", "properties": {"users": {"type": "array", "items": USER},
                                                      "next_cursor": {"type": ["string", "null"]}}})
async def list_users(request: web.Request) -> web.Response:
    await authenticate(request, scope=ADMIN)
    query = request.query
    limit = parse_limit(query.get("limit"))
    where, params = ["true"], {"limit": limit + 1}
    if (pattern := _search(query.get("q"))) is not None:
        where.append("(u.email ILIKE %(q)s ESCAPE '\\' OR u.name ILIKE %(q)s ESCAPE '\\')")
        params["q"] = pattern
    if plan := query.get("plan", "").strip():
        await _known_plan(request.app, plan)
        if plan == FREE:
            where.append("(s.plan IS NULL OR s.plan = 'free' OR NOT s.status = ANY(%(applies)s))")
        else:
            where.append("(s.plan = %(plan)s AND s.status = ANY(%(applies)s))")
        params.update(plan=plan, applies=sorted(PLAN_APPLIES))
    if (frozen := _flag(query.get("frozen"), "frozen")) is not None:
        where.append("u.frozen_at IS NOT NULL" if frozen else "u.frozen_at IS NULL")
    if cursor := query.get("cursor"):
        if not cursor.isdecimal() or len(cursor) > 18:
            raise bad_request("the cursor is not one this API returned; start again without it", code="bad_cursor")
        where.append("u.id < %(cursor)s")
        params["cursor"] = int(cursor)
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY u.id DESC LIMIT %(limit)s", params)
        rows = await cur.fetchall()
    users = [user_json(row) for row in rows[:limit]]
    next_cursor = str(users[-1]["id"]) if len(rows) > limit else None
    return web.json_response({"users": users, "next_cursor": next_cursor})


async def _load(pool, user_id: int) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"{_SELECT} WHERE u.id = %s", (user_id,))
        row = await cur.fetchone()
    if row is None:
        raise not_found("user")
    return user_json(row)


@operation("One user with the limits that apply, their tokens (no secrets) and recent events (admins only)",
           tags=["admin"], auth="admin",
           response={**USER, "properties": {**USER["properties"], "limits": LIMITS,
                                            "tokens": {"type": "array", "items": TOKEN},
                                            "events": {"type": "array", "items": {"type": "object"}}}})
async def show_user(request: web.Request) -> web.Response:
    await authenticate(request, scope=ADMIN)
    app = request.app
    user = await _load(app[keys.POOL], _user_id(request))
    _plan, limits = await limits_for(app, User(user["id"], user["email"], user["name"], user["is_admin"]))
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = %s ORDER BY created_at DESC",
                          (user["id"],))
        tokens = [token_json(row) for row in await cur.fetchall()]
        await cur.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE owner_id = %(u)s OR actor_id = %(u)s "
                          "ORDER BY id DESC LIMIT %(n)s", {"u": user["id"], "n": RECENT_EVENTS})
        events = [Event.from_row(row).to_json() for row in await cur.fetchall()]
    return web.json_response({**user, "limits": {"max_file": limits.max_file, "quota": limits.quota},
                              "tokens": tokens, "events": events})


def _size(value: Any, name: str) -> int | None:
    """A limit: whole bytes, a size such as "10GiB", or null for the plan's."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = parse_size(value.strip())
        except ValueError:
            value = -1
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT_BYTES:
        raise bad_request(f"'limits.{name}' must be a number of bytes (0 or more), a size such as \"10GiB\", "
                          "or null for the plan's", code="bad_limits")
    return value


def parse_patch(body: dict[str, Any]) -> tuple[bool | None, tuple[int | None, int | None] | None]:
    """(frozen or None, (max_file, quota) or None when limits are not to change) from a PATCH body; 400 otherwise."""
    unknown = sorted(set(body) - {"frozen", "limits"})
    if unknown or not body:
        raise bad_request('send {"frozen": true|false} and/or {"limits": {"max_file", "quota"} | null}'
                          + (f"; unknown field(s): {', '.join(unknown)}" if unknown else ""), code="bad_patch")
    frozen = body.get("frozen")
    if "frozen" in body and not isinstance(frozen, bool):
        raise bad_request("'frozen' must be true or false", code="bad_frozen")
    limits = body.get("limits")
    if limits is not None:
        if not isinstance(limits, dict) or set(limits) - {"max_file", "quota"}:
            raise bad_request("'limits' must be null or an object with max_file and/or quota", code="bad_limits")
        limits = (_size(limits.get("max_file"), "max_file"), _size(limits.get("quota"), "quota"))
    elif "limits" in body:
        limits = (None, None)
    return frozen, limits


@operation("Freeze or unfreeze a user, or override their limits (admins only)", tags=["admin"], auth="admin",
           body={"type": "object", "properties": {"frozen": {"type": "boolean"}, "limits": {
               **LIMITS, "description": "replaces the override: bytes or a size such as \"10GiB\" per limit, "
                                        "null (or absent) for the plan's; null removes the override"}}},
           responses={409: "An admin cannot freeze themselves"}, response=USER)
async def update_user(request: web.Request) -> web.Response:
    principal = await authenticate(request, scope=ADMIN)
    user_id = _user_id(request)
    frozen, limits = parse_patch(await json_object(request, '{"frozen": true}'))
    if frozen and user_id == principal.user.id:
        raise ApiError(409, "own_account", "you cannot freeze your own account (another admin can)")
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            try:
                if frozen is not None:
                    await accounts.set_frozen(cur, user_id, frozen, actor_id=principal.user.id)
                if limits is not None:
                    await accounts.set_limits(cur, user_id, *limits, actor_id=principal.user.id)
            except accounts.NoSuchUser:
                raise not_found("user") from None
    return web.json_response(await _load(request.app[keys.POOL], user_id))


@operation("Erase a user: their files, artifacts, sessions, tokens, shares and webhooks; events keep only "
           "their id (admins only)", tags=["admin"], auth="admin",
           body={"type": "object", "required": ["email"], "properties": {
               "email": {"type": "string", "description": "the user's email, typed again to confirm"}}},
           responses={409: "Your own account, or one with a paid subscription still running"},
           response={"type": "object", "properties": {"erased": {"type": "object"}}})
async def erase_user(request: web.Request) -> web.Response:
    principal = await authenticate(request, scope=ADMIN)
    user_id = _user_id(request)
    body = await json_object(request, '{"email": "the user\'s email, to confirm"}')
    user = await _load(request.app[keys.POOL], user_id)
    typed = body.get("email")
    if not isinstance(typed, str) or typed.strip().lower() != user["email"].lower():
        raise bad_request("type the user's email as 'email' to confirm the erasure; it did not match",
                          code="confirm_mismatch")
    if user_id == principal.user.id:
        raise ApiError(409, "own_account", "you cannot erase your own account (another admin can)")
    try:
        erased = await accounts.erase(request.app, user_id, actor_id=principal.user.id)
    except accounts.RefusedErasure as exc:
        raise ApiError(409, "subscription_active", str(exc)) from None
    except accounts.NoSuchUser:
        raise not_found("user") from None
    except ServiceUnavailable as exc:
        raise unavailable(f"the erasure stopped part-way ({exc}); the account stays frozen: erase it again "
                          "to finish") from None
    return web.json_response({"erased": {"id": user_id, "artifacts": erased.artifacts, "bytes": erased.bytes}})
