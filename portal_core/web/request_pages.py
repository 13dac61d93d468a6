"""File requests, the guest's side: ``/r/<token>``, a plain page with a file form (it works without
script, on a phone and by keyboard), and the POST that streams each file into the owner's artifacts.

Each file takes the same path as the owner's own uploads (``store_part``: streamed with its SHA-256, the
owner's plan limits and quota, ``portal_check_upload``), plus the request's own caps, which are checked
again under the request's row lock in the transaction that writes the artifact, so concurrent guests
cannot overshoot them. The files are marked with the request; the owner hears of each through
``request.file_received``.
"""

from __future__ import annotations

import datetime as dt
from html import escape

import attrs
from aiohttp import web

from .. import keys
from ..events import record
from ..interfaces import User
from ..settings import Limits
from .errors import ApiError
from .file_requests import request_state
from .links import gone_page, owner_plan, public_page, time_html, token_digest, well_formed
from .middleware import secret_path
from .form_parts import FileParts
from .upload import ENVELOPE_SLACK, human, limits_for, store_part, usage

_CLOSED = {
    "closed": ("This request is closed", "The person who asked for files has closed this request: it takes no more."),
    "expired": ("This request has expired", "This request stopped taking files on {expires}."),
    "full": ("This request has all the files it takes", "It has received as much as it accepts, so it takes no more."),
}
STOPPING = (403, 410, 503)  # after these, the rest of the form is not read


@attrs.frozen
class FileRequest:
    id: str
    owner: User
    title: str
    expires_at: dt.datetime
    max_bytes: int | None
    max_files: int | None
    received_files: int
    received_bytes: int
    closed_at: dt.datetime | None
    now: dt.datetime
    frozen: bool  # the owner's account is suspended

    @property
    def state(self) -> str:
        return request_state(self.expires_at, self.max_bytes, self.max_files, self.received_files,
                             self.received_bytes, self.closed_at, self.now)

    @property
    def owner_name(self) -> str:
        return self.owner.name or self.owner.email


async def find(request: web.Request) -> FileRequest | None:
    token = request.match_info["token"]
    if not well_formed(token):
        return None
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            """SELECT r.id, u.id, u.email, u.name, u.is_admin, r.title, r.expires_at, r.max_bytes, r.max_files,
                      r.received_files, r.received_bytes, r.closed_at, now(), u.frozen_at IS NOT NULL
               FROM file_requests r JOIN users u ON u.id = r.owner_id WHERE r.token_hash = %s""",
            (token_digest(token),))
        row = await cur.fetchone()
    if row is None:
        return None
    return FileRequest(str(row[0]), User(*row[1:5]), *row[5:])


@attrs.frozen
class Budget:
    """What the next file may be: the owner's plan and usage, and the byte limit for one file."""

    plan: str
    limits: Limits
    used: int
    limit: int
    request_left: int | None  # bytes the request still takes in all (None: no cap of its own)

    def too_large(self) -> ApiError:
        return ApiError(413, "too_large", f"the file is larger than this request takes: at most {human(self.limit)}")


async def budget(app: web.Application, req: FileRequest) -> Budget:
    plan, limits = await limits_for(app, req.owner)
    used, _count = await usage(app[keys.POOL], req.owner.id)
    left = None if req.max_bytes is None else max(0, req.max_bytes - req.received_bytes)
    limit = max(0, min(limits.max_file, limits.quota - used, left if left is not None else limits.max_file))
    return Budget(plan, limits, used, limit, left)


@attrs.define
class RequestCaps:
    """commit_row's hook: lock the request's row, check it still takes this file, count it and mark it.

    ``starting``: a guest's direct upload is being started, not committed — the request's other pending
    direct uploads count as if received, and nothing is counted or marked yet (``after`` is not called).
    """

    req: FileRequest
    starting: bool = False

    async def before(self, cur, size: int) -> None:
        # commit_row holds the owner's row: a freeze that landed since the page was read is seen here.
        await cur.execute("SELECT frozen_at IS NOT NULL FROM users WHERE id = %s", (self.req.owner.id,))
        if (await cur.fetchone())[0]:
            raise ApiError(403, "owner_suspended", "the account that asked for files has been suspended")
        await cur.execute("SELECT closed_at IS NOT NULL, expires_at <= now(), max_bytes, max_files, received_bytes, "
                          "received_files FROM file_requests WHERE id = %s FOR UPDATE", (self.req.id,))
        row = await cur.fetchone()
        if row is None or row[0]:
            raise ApiError(410, "request_closed", "the request was closed: it takes no more files")
        closed, expired, max_bytes, max_files, received_bytes, received_files = row
        if self.starting:
            await cur.execute("SELECT COALESCE(sum(size), 0), count(*) FROM direct_uploads WHERE file_request_id = %s",
                              (self.req.id,))
            pending_bytes, pending_files = await cur.fetchone()
            received_bytes, received_files = received_bytes + int(pending_bytes), received_files + pending_files
        if expired:
            raise ApiError(410, "request_expired", "the request has expired: it takes no more files")
        if max_files is not None and received_files >= max_files:
            have = "has them all, or they are on their way" if self.starting else "has them all"
            raise ApiError(410, "request_full", f"the request takes at most {max_files} file(s) and {have}")
        if max_bytes is not None and received_bytes + size > max_bytes:
            raise ApiError(413, "too_large", f"the request takes at most {human(max_bytes)} in all, and "
                                             f"{human(max(0, max_bytes - received_bytes))} of it is left")

    async def after(self, cur, artifact: dict) -> None:
        await cur.execute("UPDATE artifacts SET file_request_id = %s WHERE id = %s", (self.req.id, artifact["id"]))
        artifact["file_request_id"] = self.req.id
        await cur.execute("UPDATE file_requests SET received_files = received_files + 1, "
                          "received_bytes = received_bytes + %s WHERE id = %s", (artifact["size"], self.req.id))
        await record(cur, "request.file_received", owner_id=self.req.owner.id, subject_id=self.req.id,
                     data={"artifact_id": artifact["id"], "name": artifact["name"], "size": artifact["size"],
                           "content_type": artifact["content_type"], "sha256": artifact["sha256"],
                           "title": self.req.title})


def _base(request: web.Request) -> str:
    return f"/r/{request.match_info['token']}"


def not_found_page(request: web.Request) -> web.Response:
    return gone_page(request, "There is no such request", "This link does not exist. It may be mistyped or "
                     "incomplete, or it stopped working a long time ago.", status=404)


async def refusal(app: web.Application, req: FileRequest) -> tuple[int, str, str, str] | None:
    """(status, code, title, message as HTML) when the request takes nothing now, else None."""
    if req.frozen:
        return 403, "owner_suspended", "This request is not available", (
            "The account that asked for files has been suspended, so this request takes nothing for now.")
    if req.state != "open":
        title, message = _CLOSED[req.state]
        return 410, f"request_{req.state}", title, message.format(expires=time_html(req.expires_at))
    _plan, rules = await owner_plan(app, req.owner)
    if not rules.file_requests:
        return 403, "request_paused", "This request is paused", (
            "The person who asked for files cannot receive them through a request on their current plan.")
    site = app[keys.SITE].current
    if site.read_only:  # the form's POST would be refused (read_only_guard): say so here instead
        return 503, "read_only", "The portal is read-only right now", "It is read-only for maintenance, so this " \
            "request takes no files for now; try again later." + (f" ({escape(site.banner)})" if site.banner else "")
    if site.uploads_paused:
        return 503, "uploads_paused", "Uploads are paused", "Uploads are paused for maintenance; try again later." + (
            f" ({escape(site.banner)})" if site.banner else "")
    return None


def _direct_attributes(request: web.Request) -> str:
    """With script, files above DIRECT_UPLOAD_THRESHOLD go straight to storage (portal_core/web/request_direct.py)
    when the storage offers it; the form says where, and from what size."""
    if request.app[keys.DIRECT_UPLOADS] is None:
        return ""
    threshold = request.app[keys.CONFIG].core.direct_upload_threshold
    return (f' data-direct-endpoint="/api{escape(_base(request))}" data-direct-threshold="{int(threshold)}"')


def _form(request: web.Request, req: FileRequest, room: Budget) -> str:
    facts = [f"<dt>Open until</dt><dd>{time_html(req.expires_at)}</dd>"]
    if req.max_files is not None:
        facts.append(f'<dt>Files</dt><dd data-testid="request-files-left">up to {req.max_files - req.received_files} more</dd>')
    facts.append(f'<dt>Size</dt><dd data-testid="request-size-left">up to {escape(human(room.limit))} per file'
                 + (f", {escape(human(room.request_left))} more in all" if room.request_left is not None else "") + "</dd>")
    return (f'<p><strong>{escape(req.owner_name)}</strong> asks you to send files. They go straight to '
            "their files in the portal; you need no account.</p>"
            f'<dl class="facts">{"".join(facts)}</dl>'
            f'<form method="post" action="{escape(_base(request))}" enctype="multipart/form-data" class="stack" '
            f'data-enhance="upload-progress"{_direct_attributes(request)} data-testid="request-form">'
            '<label for="request-files">Files to send</label>'
            '<input type="file" id="request-files" name="file" multiple required data-testid="request-files">'
            '<p class="actions"><button type="submit" class="button button-primary button-large" '
            'data-testid="request-send">Send files</button></p></form>')


async def page_for(request: web.Request, req: FileRequest, *, notice: str = "", status: int = 200) -> web.Response:
    """The request's page as it stands now: the form, or why it takes nothing."""
    stop = await refusal(request.app, req)
    if stop is not None:
        code, _name, title, message = stop
        body = (f'{notice}<p class="notice notice-error" role="alert" data-testid="request-closed">{message}</p>')
        return public_page(request, title, body, status=status if notice else code)
    room = await budget(request.app, req)
    if room.limit <= 0 and (room.request_left is None or room.request_left > 0):
        body = (f'{notice}<p class="notice notice-error" role="alert" data-testid="request-no-room">The person who '
                "asked for files has no storage left, so this request cannot take any right now.</p>")
        return public_page(request, req.title, body, status=status)
    return public_page(request, req.title, notice + _form(request, req, room), status=status)


@secret_path
async def request_page(request: web.Request) -> web.Response:
    """GET /r/<token>: who asks, until when, how much more, and the form."""
    req = await find(request)
    if req is None:
        return not_found_page(request)
    return await page_for(request, req)


@secret_path
async def receive(request: web.Request) -> web.Response:
    """POST /r/<token> (multipart, one or more 'file' fields): store each file, then say what arrived."""
    app = request.app
    req = await find(request)
    if req is None:
        return not_found_page(request)
    stop = await refusal(app, req)
    if stop is not None:
        return await page_for(request, req)
    room = await budget(app, req)
    whole = min(room.limits.quota - room.used, room.request_left if room.request_left is not None else room.limits.quota)
    if request.content_length is not None and request.content_length > max(0, whole) + ENVELOPE_SLACK:
        return await result(request, [], (room.too_large(), None))
    if not request.content_type.startswith("multipart/form-data"):
        return await result(request, [], (ApiError(400, "bad_request", "send the files with the page's form "
                                                                       "(multipart/form-data, field 'file')"), None))
    received: list[dict] = []
    refused: tuple[ApiError, str | None] | None = None
    try:
        form = await FileParts.of(request)
        part = await form.next_file()
    except ApiError as exc:
        return await result(request, [], (exc, None))
    while part is not None:
        if not part.filename and not received and refused is None:
            refused = (ApiError(400, "no_file", "choose at least one file to send"), None)
            break
        try:
            room = await budget(app, req)
            received.append(await store_part(app, req.owner, part, plan=room.plan, limits=room.limits,
                                             used=room.used, limit=room.limit, too_large_error=room.too_large,
                                             hook=RequestCaps(req), event_data={"file_request_id": req.id},
                                             actor_id=None, form=form))
        except ApiError as exc:
            refused = refused or (exc, part.filename)
            if exc.status in STOPPING or exc.code == "bad_multipart":
                break
        try:
            part = await form.next_file()
        except ApiError as exc:  # the form broke off after the last file that arrived whole
            refused = refused or (exc, None)
            break
    if not received and refused is None:
        refused = (ApiError(400, "no_file", "choose at least one file to send"), None)
    return await result(request, received, refused)


async def result(request: web.Request, received: list[dict], refused: tuple[ApiError, str | None] | None) -> web.Response:
    """The page after a send: what arrived and what did not (and why); 201 when everything arrived."""
    parts = []
    if received:
        items = "".join(f'<li data-testid="received-file">{escape(a["name"])} '
                        f'<span class="hint">({escape(human(a["size"]))})</span></li>' for a in received)
        parts.append(f'<div class="notice notice-success" role="status" data-testid="request-received"><p>'
                     f'Sent {len(received)} file{"s" if len(received) != 1 else ""}:</p><ul>{items}</ul></div>')
    if refused is not None:
        error, name = refused
        what = f"“{escape(name)}” was not sent: " if name else "Nothing was sent: "
        parts.append(f'<p class="notice notice-error" role="alert" data-testid="request-refused">{what}'
                     f"{escape(error.message)}.</p>")
    status = 201 if refused is None else refused[0].status
    req = await find(request)
    if req is None:  # the owner went away meanwhile
        return not_found_page(request)
    return await page_for(request, req, notice="".join(parts), status=status)


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/r/{token}", request_page),
        web.post("/r/{token}", receive),
    ]
