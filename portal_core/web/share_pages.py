"""Share links, the visitor's side: ``/s/<token>`` (the file's page, or its password form) and
``/s/<token>/download``.

A download is counted by one conditional UPDATE, so with ``max_downloads`` = 5 exactly five of any number
of concurrent requests get the file. A link that no longer works answers 410 with a page saying why.
Wrong passwords are counted in the database, per link: the eleventh within ten minutes answers 429,
whichever pod it reaches. A right password sets a cookie for this link only (an HMAC keyed by the
stored password hash, so it dies with the link and needs no server secret).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from html import escape

import attrs
from aiohttp import web

from .. import keys
from ..events import record
from .artifacts import refuse_quarantined, send_download, storage_download
from . import inputs
from .errors import ApiError
from .inputs import same_secret
from .links import (FAILURE_WINDOW_SECONDS, gone_page, public_page, time_html, token_digest, verify_password_async,
                    well_formed, when)
from .middleware import secret_path
from .shares import share_state
from .upload import human

COOKIE = "portal_share"
UNLOCK_SECONDS = 3600
MAX_FAILURES = 10

_GONE = {
    "deleted": ("This file was deleted", "The person who shared it has deleted the file, so the link no longer works."),
    "revoked": ("This link was revoked", "The person who shared it has turned this link off."),
    "expired": ("This link has expired", "The link stopped working on {expires}."),
    "exhausted": ("This link has been used up", "The file has been downloaded as many times as the link "
                                                 "allows ({max_downloads})."),
}


@attrs.frozen
class Share:
    id: str
    owner_id: int
    artifact_id: str | None
    password_hash: str | None
    expires_at: dt.datetime
    max_downloads: int | None
    downloads: int
    revoked_at: dt.datetime | None
    now: dt.datetime
    name: str
    size: int | None
    sha256: str | None
    sharer: str
    frozen: bool  # the owner's account is suspended (an admin froze it): the link works again if unfrozen

    @property
    def state(self) -> str:
        return share_state(self.artifact_id, self.expires_at, self.max_downloads, self.downloads,
                           self.revoked_at, self.now)


async def find(request: web.Request) -> Share | None:
    """The share the URL's token opens, or None (a malformed token is not even looked up)."""
    token = request.match_info["token"]
    if not well_formed(token):
        return None
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            """SELECT s.id, s.owner_id, s.artifact_id, s.password_hash, s.expires_at, s.max_downloads, s.downloads,
                      s.revoked_at, now(), COALESCE(a.name, s.artifact_name), a.size, a.sha256,
                      COALESCE(NULLIF(u.name, ''), u.email), u.frozen_at IS NOT NULL
               FROM shares s JOIN users u ON u.id = s.owner_id LEFT JOIN artifacts a ON a.id = s.artifact_id
               WHERE s.token_hash = %s""", (token_digest(token),))
        row = await cur.fetchone()
    if row is None:
        return None
    return Share(str(row[0]), *row[1:])


def not_found_page(request: web.Request) -> web.Response:
    return gone_page(request, "There is no such link", "This link does not exist. It may be mistyped or "
                     "incomplete, or it stopped working a long time ago.", status=404)


def suspended_page(request: web.Request) -> web.Response:
    return gone_page(request, "This link is not available", "The account that shared this file has been "
                     "suspended, so its links do not work for now.", status=403)


def unavailable(request: web.Request, share: Share) -> web.Response | None:
    """The page for a link that does not work now (its owner suspended, or it is gone), else None."""
    if share.frozen:
        return suspended_page(request)
    return gone(request, share) if share.state != "active" else None


def gone(request: web.Request, share: Share) -> web.Response:
    title, message = _GONE.get(share.state, ("This link does not work right now", "Try it again in a moment."))
    return gone_page(request, title, message.format(expires=when(share.expires_at),
                                                    max_downloads=share.max_downloads))


def _base(request: web.Request) -> str:
    return f"/s/{request.match_info['token']}"


# ---------------------------------------------------------------------------------------------------
# Passwords: the lockout and the unlock cookie


def _mac(share: Share, expires: int) -> str:
    return hmac.new(share.password_hash.encode(), f"{share.id}|{expires}".encode(), hashlib.sha256).hexdigest()


def unlocked(request: web.Request, share: Share) -> bool:
    """Whether this browser gave the right password for this link within the last hour."""
    expires, _, mac = request.cookies.get(COOKIE, "").partition(".")
    if not expires.isdecimal() or int(expires) < time.time():
        return False
    return same_secret(mac, _mac(share, int(expires)))


def set_unlock_cookie(response: web.StreamResponse, request: web.Request, share: Share) -> None:
    expires = int(time.time()) + UNLOCK_SECONDS
    response.set_cookie(COOKIE, f"{expires}.{_mac(share, expires)}", max_age=UNLOCK_SECONDS, path=_base(request),
                        httponly=True, samesite="Strict", secure=request.app[keys.CONFIG].core.secure_cookies)


async def failures(cur, share_id: str) -> tuple[int, float]:
    """(wrong tries on the link within the window, seconds until the oldest of them leaves it)."""
    await cur.execute(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM min(attempted_at) + make_interval(secs => %s) - now()), 0) "
        "FROM share_password_failures WHERE share_id = %s AND attempted_at > now() - make_interval(secs => %s)",
        (FAILURE_WINDOW_SECONDS, share_id, FAILURE_WINDOW_SECONDS))
    count, wait = await cur.fetchone()
    return count, float(wait)


async def locked_for(pool, share: Share) -> float | None:
    """Seconds until the link takes passwords again, or None when it takes them now."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        count, wait = await failures(cur, share.id)
    return max(1.0, wait) if count >= MAX_FAILURES else None


async def try_password(pool, share: Share, password: str) -> tuple[str, float | None]:
    """("right" | "wrong" | "locked", seconds to wait when locked, else None).

    The try is written as a failure before the (slow) check and removed when the password was right, all
    under the link's row lock: concurrent guesses on any number of pods cannot get past ten.
    """
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("SELECT 1 FROM shares WHERE id = %s FOR UPDATE", (share.id,))
            count, wait = await failures(cur, share.id)
            if count >= MAX_FAILURES:
                return "locked", max(1.0, wait)
            await cur.execute("INSERT INTO share_password_failures (share_id) VALUES (%s) RETURNING id", (share.id,))
            (attempt,) = await cur.fetchone()
    if not await verify_password_async(password, share.password_hash):
        return "wrong", None
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("DELETE FROM share_password_failures WHERE id = %s", (attempt,))
    return "right", None


def password_page(request: web.Request, *, wrong: bool = False, status: int = 200) -> web.Response:
    """The password form; 403 after a wrong password (``status`` 403 too when a download asked without one)."""
    error = ('<p class="notice notice-error" role="alert" id="password-error" data-testid="password-error">'
             "That password is not right. Check it and try again.</p>") if wrong else ""
    described = ' aria-describedby="password-error"' if wrong else ""
    body = (f"{error}<p>This file is protected with a password. Enter it to see the file and download it.</p>"
            f'<form method="post" action="{escape(_base(request))}" class="stack" data-testid="share-password-form">'
            '<label for="share-password">Password</label>'
            f'<input type="password" id="share-password" name="password" required maxlength="256" '
            f'autocomplete="off" autofocus{described} data-testid="share-password">'
            '<p class="actions"><button type="submit" class="button button-primary" data-testid="share-unlock">'
            "Unlock</button></p></form>")
    return public_page(request, "A file shared with you", body, status=403 if wrong else status)


def locked_page(request: web.Request, wait: float) -> web.Response:
    minutes = max(1, round(wait / 60))
    message = (f"There have been too many wrong passwords for this link. Try again in "
               f"{'a minute' if minutes == 1 else f'{minutes} minutes'}.")
    return public_page(request, "Too many tries",
                       f'<p class="notice notice-error" role="alert" data-testid="link-locked">{escape(message)}</p>',
                       status=429, headers={"Retry-After": str(int(wait) + 1)})


async def password_from_form(request: web.Request) -> str:
    form = await inputs.form(request)
    value = form.get("password")
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------------------------------
# Pages


def details_page(request: web.Request, share: Share) -> web.Response:
    left = ""
    if share.max_downloads is not None:
        remaining = share.max_downloads - share.downloads
        left = (f'<dt>Downloads left</dt><dd data-testid="share-left">{remaining} of {share.max_downloads}</dd>')
    body = ('<dl class="facts" data-testid="share-facts">'
            f'<dt>File</dt><dd data-testid="share-name">{escape(share.name)}</dd>'
            f'<dt>Size</dt><dd data-testid="share-size">{escape(human(share.size))} '
            f'<span class="hint">({share.size:,} bytes)</span></dd>'
            f'<dt>SHA-256</dt><dd><code class="checksum" data-testid="share-sha">{escape(share.sha256)}</code></dd>'
            f'<dt>Shared by</dt><dd data-testid="share-sharer">{escape(share.sharer)}</dd>'
            f'<dt>Link expires</dt><dd data-testid="share-expires">{time_html(share.expires_at)}</dd>{left}</dl>'
            f'<p class="actions"><a class="button button-primary button-large" href="{escape(_base(request))}/download" '
            'data-testid="share-download">Download</a></p>')
    return public_page(request, "A file shared with you", body)


@secret_path
async def share_page(request: web.Request) -> web.Response:
    """GET /s/<token>: the file's facts and a Download button, or the password form first."""
    share = await find(request)
    if share is None:
        return not_found_page(request)
    if (stop := unavailable(request, share)) is not None:
        return stop
    if share.password_hash is not None and not unlocked(request, share):
        wait = await locked_for(request.app[keys.POOL], share)
        return locked_page(request, wait) if wait is not None else password_page(request)
    return details_page(request, share)


@secret_path
async def unlock(request: web.Request) -> web.Response:
    """POST /s/<token> (form field ``password``): a right password opens the link for an hour in this browser."""
    share = await find(request)
    if share is None:
        return not_found_page(request)
    if (stop := unavailable(request, share)) is not None:
        return stop
    response = web.Response(status=303, headers={"Location": _base(request), "Cache-Control": "no-store"})
    if share.password_hash is None:
        return response
    outcome, wait = await try_password(request.app[keys.POOL], share, await password_from_form(request))
    if outcome == "locked":
        return locked_page(request, wait)
    if outcome == "wrong":
        return password_page(request, wrong=True)
    set_unlock_cookie(response, request, share)
    return response


@secret_path
async def download(request: web.Request) -> web.StreamResponse:
    """GET or POST /s/<token>/download: the file, counted — a 302 to a short-lived storage URL, or its bytes.

    A password link needs this browser's unlock cookie, or (POST, for scripts) the ``password`` form field:
    403 without a right one, 429 while locked. 410 once the link stopped working, 404 for no such link.
    """
    share = await find(request)
    if share is None:
        return not_found_page(request)
    if (stop := unavailable(request, share)) is not None:
        return stop
    if share.password_hash is not None and not unlocked(request, share):
        if request.method != "POST":
            wait = await locked_for(request.app[keys.POOL], share)
            return locked_page(request, wait) if wait is not None else password_page(request, status=403)
        outcome, wait = await try_password(request.app[keys.POOL], share, await password_from_form(request))
        if outcome == "locked":
            return locked_page(request, wait)
        if outcome == "wrong":
            return password_page(request, wrong=True)
    return await count_and_send(request, share)


async def count_and_send(request: web.Request, share: Share) -> web.StreamResponse:
    """Count one download — only while the link still works, atomically — then hand the file over.

    The count, the storage lookup and the ``share.downloaded`` event share one transaction: when storage
    cannot serve the file, the download is not counted.
    """
    app = request.app
    try:
        async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
            async with cur.begin():
                await cur.execute(
                    """UPDATE shares s SET downloads = s.downloads + 1 FROM artifacts a
                       WHERE s.id = %s AND a.id = s.artifact_id AND s.revoked_at IS NULL AND s.expires_at > now()
                         AND (s.max_downloads IS NULL OR s.downloads < s.max_downloads)
                         AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.owner_id AND u.frozen_at IS NOT NULL)
                       RETURNING s.downloads, a.id, a.name, a.size, a.content_type, a.storage_key,
                                 a.verification, a.verification_detail""", (share.id,))
                row = await cur.fetchone()
                if row is not None:
                    downloads, artifact_id, name, size, content_type, key, verification, detail = row
                    refuse_quarantined(verification, detail)  # not counted: the transaction rolls back
                    target = await storage_download(app, key, name, content_type)
                    await record(cur, "share.downloaded", owner_id=share.owner_id, subject_id=share.id,
                                 data={"artifact_id": str(artifact_id), "name": name, "size": size,
                                       "downloads": downloads, "max_downloads": share.max_downloads})
    except ApiError as exc:
        return gone_page(request, "The file cannot be downloaded right now", exc.message, status=exc.status)
    if row is None:  # it stopped working since it was looked up (revoked, used up, suspended meanwhile): say why
        now = await find(request)
        return (unavailable(request, now) or gone(request, now)) if now is not None else not_found_page(request)
    return await send_download(request, target, name, size, content_type)


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/s/{token}", share_page),
        web.post("/s/{token}", unlock),
        # No HEAD: a link checker's HEAD must not count as a download.
        web.get("/s/{token}/download", download, allow_head=False),
        web.post("/s/{token}/download", download),
    ]
