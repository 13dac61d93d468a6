"""Sign-in and sign-out routes: the core side of every auth backend.

/login is the sign-in page (its links carry ``next`` as the server judged it, see next_path.py);
/auth/login sends a signed-in browser on to ``next``, and otherwise keeps the backend's login state in a
server-side pre-login session and redirects;
/auth/callback hands it back to the backend, upserts the user by (issuer, subject) and starts a fresh
session; /auth/logout deletes the session and follows the backend's logout URL.
"""

from __future__ import annotations

import logging
import time
from html import escape
from urllib.parse import quote

from aiohttp import web

from .. import keys
from ..events import record, record_now
from ..interfaces import Identity, LoginFailed, ServiceUnavailable
from . import sessions
from .errors import ApiError
from .html import redirect, render_page
from .inputs import form
from .next_path import safe_next

log = logging.getLogger("portal.auth")

LOGIN_TTL_SECONDS = 600
SIGNED_OUT_COOKIE = "portal_signed_out"


def callback_url(request: web.Request) -> str:
    return request.app[keys.CONFIG].core.base_url + "/auth/callback"


async def signed_in_user(request: web.Request) -> int | None:
    """The id of the browser's signed-in, unsuspended user, or None (signed out, expired, pre-login, suspended)."""
    try:
        return (await sessions.authenticate(request, allow_token=False, scope=None)).user.id
    except ApiError:
        return None


async def login_page(request: web.Request) -> web.Response:
    """/login: the front end's sign-in page, with ``next`` filled in by the server's rule (next_path.py).

    The page's script never reads ``?next=`` itself, so a value the server would refuse can never become
    a link on it (browsers drop tabs and newlines inside URLs, which once turned "/\t/evil" into "//evil").
    """
    entry = request.app[keys.ASSETS].files.get("login.html")
    if entry is None:
        raise web.HTTPNotFound(text="this page is missing from the installed assets")
    target = safe_next(request.query.get("next"))
    body = (entry[0].replace(b"{{next}}", escape(target).encode())
            .replace(b"{{next_query}}", escape(quote(target, safe="")).encode()))
    return web.Response(body=body, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})


async def login(request: web.Request) -> web.StreamResponse:
    """GET /auth/login: start a sign-in, or, for a browser signed in already, go on to ``next``.

    A GET never ends a session (a link on any site can make a browser GET this): only POST /auth/logout does.
    """
    target = safe_next(request.query.get("next"))
    if await signed_in_user(request) is not None:
        return redirect(target)
    auth = request.app[keys.AUTH]
    try:
        start = await auth.begin_login(callback_url=callback_url(request))
    except (LoginFailed, ServiceUnavailable) as exc:
        return await login_failed_page(request, str(exc), reason=getattr(exc, "reason", str(exc)))
    data = {"login": {"state": dict(start.state), "next": target,
                      "started": time.time()}}
    session = await sessions.load_session(request)
    secret = await sessions.create_session(request, user_id=None, data=data, replacing=session)
    response = redirect(start.redirect_url)
    sessions.set_cookie(response, request, secret)
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    params = dict(request.query)
    if request.method == "POST":
        params.update({k: v for k, v in (await form(request)).items() if isinstance(v, str)})
    session = await sessions.load_session(request)
    attempt = (session.data.get("login") if session else None) or None
    if attempt is None:
        return await login_failed_page(request, "There is no sign-in in progress in this browser (or it already finished).",
                                 reason="callback without a pending login in the session")
    # The attempt is single-use, whatever happens next.
    session.data.pop("login", None)
    await sessions.save_data(request, session)
    if time.time() - attempt.get("started", 0) > LOGIN_TTL_SECONDS:
        return await login_failed_page(request, "The sign-in took too long and expired.", reason="expired login attempt")
    try:
        identity = await request.app[keys.AUTH].complete_login(
            params=params, state=attempt.get("state", {}), callback_url=callback_url(request))
    except LoginFailed as exc:
        return await login_failed_page(request, exc.message, reason=exc.reason)
    except ServiceUnavailable as exc:
        return await login_failed_page(request, "The sign-in service is not answering right now.", reason=str(exc))
    backend = request.app[keys.AUTH].name
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            refusal = await sign_in_refusal(request, cur, identity)
            if refusal is None:
                user_id, created = await upsert_user(cur, identity)
                if created:
                    await record(cur, "user.created", actor_id=user_id, owner_id=user_id, subject_id=user_id,
                                 data={"auth_backend": backend})
                secret = await sessions.create_session_in(cur, user_id=user_id,
                                                          data={"auth": dict(identity.session_data)}, replacing=session)
                await record(cur, "user.signed_in", actor_id=user_id, owner_id=user_id, subject_id=user_id,
                             data={"auth_backend": backend})
    if refusal is not None:
        message, reason = refusal
        return await login_failed_page(request, message, reason=reason, status=403)
    log.info("user %s signed in via %s", user_id, backend)
    response = redirect(safe_next(attempt.get("next")))
    sessions.set_cookie(response, request, secret)
    return response


async def sign_in_refusal(request: web.Request, cur, identity: Identity) -> tuple[str, str] | None:
    """(message for the person, reason for the log) when this identity may not sign in now, else None.

    A frozen account is refused; while signups are paused, so is anyone without an account yet. The
    user's row is locked, so a freeze committed meanwhile is seen.
    """
    await cur.execute("SELECT id, frozen_at IS NOT NULL FROM users WHERE issuer = %s AND subject = %s FOR UPDATE",
                      (identity.issuer, identity.subject))
    existing = await cur.fetchone()
    if existing is not None and existing[1]:
        return ("This account is suspended. If you think this is a mistake, contact the portal's administrators.",
                f"account suspended (user {existing[0]})")
    if existing is None and request.app[keys.SITE].current.signups_paused:
        banner = request.app[keys.SITE].current.banner
        return ("The portal is not accepting new accounts right now. Please try again later."
                + (f" {banner}" if banner else ""), "signups are paused and this identity has no account")
    return None


async def upsert_user(cur, identity: Identity) -> tuple[int, bool]:
    """Create or refresh the user for ``identity`` in the caller's transaction: (user id, whether it is new).

    ``is_admin`` follows the identity provider at every sign-in; an admin granted by ``portal admin
    grant-admin`` (``admin_granted``) stays one whatever the provider says.
    """
    await cur.execute(
        """
        INSERT INTO users (issuer, subject, email, name, is_admin, last_sign_in_at) VALUES (%s, %s, %s, %s, %s, now())
        ON CONFLICT (issuer, subject) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name,
            is_admin = EXCLUDED.is_admin, last_sign_in_at = now(), updated_at = now()
        RETURNING id, xmax = 0
        """,
        (identity.issuer, identity.subject, identity.email, identity.name, identity.is_admin))
    user_id, created = await cur.fetchone()
    return user_id, created


async def logout(request: web.Request) -> web.StreamResponse:
    try:
        principal = await sessions.authenticate(request, allow_token=False)
    except ApiError as exc:
        if exc.code != "suspended":
            raise
        # A suspended account's session is refused everywhere already; let the browser forget it too.
        response = redirect("/login")
        sessions.clear_cookie(response)
        return response
    user_id = principal.user.id
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("DELETE FROM sessions WHERE id_hash = %s", (principal.session.id_hash,))
            await record(cur, "user.signed_out", actor_id=user_id, owner_id=user_id, subject_id=user_id)
    base = request.app[keys.CONFIG].core.base_url
    try:
        target = await request.app[keys.AUTH].logout_url(
            session_data=principal.session.data.get("auth", {}), post_logout_redirect_url=base + "/")
    except (ServiceUnavailable, LoginFailed) as exc:
        log.warning("provider logout unavailable, signed out locally: %s", exc)
        target = None
    response = redirect(target or "/login")
    sessions.clear_cookie(response)
    # Read by the sign-in page, wherever the provider's logout sends the browser back to, to say
    # "You have signed out"; it holds nothing secret and the page deletes it once shown.
    response.set_cookie(SIGNED_OUT_COOKIE, "1", max_age=600, path="/", samesite="Lax",
                        secure=request.app[keys.CONFIG].core.secure_cookies)
    return response


async def login_failed_page(request: web.Request, message: str, *, reason: str, status: int = 400) -> web.Response:
    """A friendly page with a way back; the reason goes to the log and the audit trail, never a session is created."""
    log.warning("sign-in failed: %s", reason)
    await record_now(request.app[keys.POOL], "user.sign_in_failed",
                     data={"reason": reason[:300], "auth_backend": request.app[keys.AUTH].name})
    body = (f'<p class="notice notice-error" role="alert" data-testid="sign-in-error">{escape(message)}</p>'
            '<p class="actions"><a class="button button-primary" href="/auth/login">Try again</a>'
            '<a class="button" href="/">Back to the portal</a></p>')
    return render_page(request, "Sign-in did not work", body, status=status)
