"""What share links and file requests have in common: their tokens, passwords, expiry and plan rules,
and the pages a person without an account sees.

A link's token is 192 random bits, handed out once and stored only as its SHA-256 (like sessions and API
tokens). Passwords are hashed with scrypt. The rules — how long a link may live, whether it may have a
password, whether file requests are offered — come from the owner's plan (PLAN_<NAME>_SHARE_MAX_DAYS,
_SHARE_PASSWORDS, _FILE_REQUESTS), and a refusal names the rule and the plan that lifts it.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from html import escape
from typing import Any

from aiohttp import web

from .. import keys
from ..interfaces import User
from ..settings import SharingRules
from .errors import ApiError, bad_request
from .html import render_page
from .inputs import check_text

TOKEN_BYTES = 24  # 192 random bits, 32 URL-safe characters
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
DAY = 86400
MIN_EXPIRES_IN = 60
DEFAULT_EXPIRES_IN = 7 * DAY
MAX_PASSWORD = 256
# Wrong passwords on one link within this window lock it (portal_core/web/share_pages.py).
FAILURE_WINDOW_SECONDS = 600
# Links that stopped working (expired or revoked) stay listed, and answer 410, this long; then they go.
ENDED_KEPT_DAYS = 30
# scrypt at n=2**14, r=8: about 16 MiB and tens of milliseconds per guess (OWASP's minimum), run off
# the event loop so a guesser slows only their own answers.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def new_token() -> tuple[str, bytes]:
    """A fresh link token and the digest to store for it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_digest(token)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def well_formed(token: str) -> bool:
    """Whether ``token`` could be one this portal handed out (anything else is not looked up)."""
    return bool(_TOKEN.match(token))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (from :func:`hash_password`); constant-time comparison."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(base64.b64decode(expected)))
    except ValueError:
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    return await asyncio.to_thread(verify_password, password, stored)


def check_fields(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    """400 naming any field the operation does not take (a misspelt "max_download" must not be ignored)."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(map(repr, unknown))}; this takes {', '.join(allowed)}",
                          code="unknown_field")


def optional_password(body: Mapping[str, Any]) -> str | None:
    """``body["password"]``: None when absent, null or empty; else 1 to 256 characters of text."""
    value = body.get("password")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_PASSWORD:
        raise bad_request(f"'password' must be a string of at most {MAX_PASSWORD} characters", code="bad_password")
    return check_text(value, "'password'")


async def owner_plan(app: web.Application, user: User) -> tuple[str, SharingRules]:
    plan = (await app[keys.BILLING].current_plan(user.id)).name
    return plan, app[keys.CONFIG].core.sharing(plan)


RULES = {"type": "object", "description": "what your plan allows with share links and file requests", "properties": {
    "plan": {"type": "string"}, "max_expires_in": {"type": "integer"}, "default_expires_in": {"type": "integer"},
    "passwords": {"type": "boolean"}, "file_requests": {"type": "boolean"}}}


def link(request: web.Request, prefix: str, token: str) -> str:
    """The public URL of a link: APP_BASE_URL/<prefix>/<token>."""
    return f"{request.app[keys.CONFIG].core.base_url}/{prefix}/{token}"


def rules_json(plan: str, rules: SharingRules) -> dict:
    """The rules as the front end shows them (and bounds its forms by)."""
    return {"plan": plan, "max_expires_in": rules.share_max_days * DAY,
            "default_expires_in": min(DEFAULT_EXPIRES_IN, rules.share_max_days * DAY),
            "passwords": rules.share_passwords, "file_requests": rules.file_requests}


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _upgrade(app: web.Application, allows) -> str:
    """Where the refusal points: the first paid plan whose rules allow it, or that none does."""
    core = app[keys.CONFIG].core
    for plan in app[keys.BILLING].plans():
        if allows(core.sharing(plan)):
            return f"upgrade to {plan.title()} on the Billing page"
    return "no plan offers more"


def plan_refusal(app: web.Application, plan: str, rule: str, allows) -> ApiError:
    """403 ``plan_rule``: ``rule`` names the plan's rule; the message ends offering the plan that lifts it."""
    return ApiError(403, "plan_rule", f"the {plan} plan {rule}; {_upgrade(app, allows)}")


def expires_in(app: web.Application, body: Mapping[str, Any], plan: str, rules: SharingRules) -> int:
    """``body["expires_in"]`` in seconds (default 7 days, or the plan's longest when shorter): at least a
    minute, and within the plan's longest expiry (403 naming it otherwise)."""
    value = body.get("expires_in")
    longest = rules.share_max_days * DAY
    if value is None:
        return min(DEFAULT_EXPIRES_IN, longest)
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_EXPIRES_IN:
        raise bad_request(f"'expires_in' must be a whole number of seconds, at least {MIN_EXPIRES_IN}",
                          code="bad_expires_in")
    if value > longest:
        raise plan_refusal(app, plan, f"allows an expiry of at most {_days(rules.share_max_days)} "
                                      f"({longest} seconds; asked for {value})",
                           lambda better: better.share_max_days * DAY >= value)
    return value


def when(moment: dt.datetime) -> str:
    """A moment as public pages show it: "8 January 2025, 14:03 UTC"."""
    utc = moment.astimezone(dt.timezone.utc)
    return f"{utc.day} {utc:%B %Y, %H:%M} UTC"


def time_html(moment: dt.datetime) -> str:
    return f'<time datetime="{escape(moment.isoformat())}">{escape(when(moment))}</time>'


def public_page(request: web.Request, title: str, body_html: str, *, status: int = 200,
                headers: dict[str, str] | None = None) -> web.Response:
    """A page for someone who followed a link: the layout with the signed-out header (the visitor may be
    anyone). The route is a :func:`~portal_core.web.middleware.secret_path`, so no Referer leaves it and
    it is never indexed."""
    return render_page(request, title, body_html, status=status, headers=headers)


def gone_page(request: web.Request, title: str, message: str, *, status: int = 410) -> web.Response:
    body = (f'<p class="notice notice-error" role="alert" data-testid="link-gone">{escape(message)}</p>'
            '<p class="hint">Ask the person who sent you the link for a new one.</p>')
    return public_page(request, title, body, status=status)


async def purge_ended(pool) -> tuple[int, int]:
    """Housekeeping: forget wrong passwords older than the lockout window, and share links that expired or
    were revoked more than ENDED_KEPT_DAYS ago (they then answer 404); (failures, links) deleted."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("DELETE FROM share_password_failures WHERE attempted_at < now() - make_interval(secs => %s)",
                          (FAILURE_WINDOW_SECONDS,))
        failures = cur.rowcount
        await cur.execute("DELETE FROM shares WHERE expires_at < now() - make_interval(days => %s) "
                          "OR revoked_at < now() - make_interval(days => %s)", (ENDED_KEPT_DAYS, ENDED_KEPT_DAYS))
        return failures, cur.rowcount
