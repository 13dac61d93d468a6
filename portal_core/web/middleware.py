"""Middlewares: security headers and request ids on every answer, JSON errors, request metrics."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from urllib.parse import quote, urlsplit

import psycopg2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .. import keys
from ..events import Origin, origin_var
from ..logs import request_id_var
from ..openapi import is_api_path
from ..redact import mask
from .errors import ApiError, json_error
from .html import error_page
from .inputs import check_request_text

log = logging.getLogger("portal.web")

# What the request metrics count when the client went away before an answer (nginx's convention): not a 5xx.
CLIENT_CLOSED = 499


def content_security_policy(form_targets: str, upload_targets: str = "") -> str:
    """The CSP of every answer. ``form_targets``: where a sign-out form may be redirected (the identity
    provider); ``upload_targets``: the storage origins the browser PUTs direct-upload parts to.

    'wasm-unsafe-eval' lets the SHA-256 worker compile hash-wasm's WebAssembly (browsers refuse
    ``WebAssembly.compile`` under a script-src without it); it allows no JavaScript eval, and scripts
    still come only from the portal itself.
    """
    return ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'{' ' + upload_targets if upload_targets else ''}; "
            f"form-action 'self'{' ' + form_targets if form_targets else ''}; frame-ancestors 'none'; base-uri 'none'; "
            "object-src 'none'")


def security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


# Set on a handler whose URL carries a secret (a share link's token): see :func:`secret_path`.
SECRET_PATH = "__portal_secret_path__"
# What a link someone was handed must never do: tell the next site where it came from, or get indexed.
PRIVATE_LINK_HEADERS = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}


def secret_path(handler):
    """Declare that ``handler``'s URL itself is a secret (``/s/{token}``): wherever the portal would log
    the path it logs the route's pattern instead (``/s/{token}``), and every answer — error pages and
    redirects included — carries :data:`PRIVATE_LINK_HEADERS`, so browsers send no Referer onward."""
    setattr(handler, SECRET_PATH, True)
    return handler


def has_secret_path(request: web.Request) -> bool:
    return getattr(request.match_info.handler, SECRET_PATH, False)


def loggable_path(request: web.Request) -> str:
    """The request's path as logs may show it: the route's pattern when the path holds a secret."""
    if has_secret_path(request):
        resource = request.match_info.route.resource
        return resource.canonical if resource is not None else "(a secret path)"
    return request.path


def is_page(path: str) -> bool:
    """A person's browser asked for a page (not the API, not a static file): errors get a styled page."""
    return not is_api_path(path) and not path.startswith("/static/") and path != "/favicon.ico"


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, streamed or not, carries the security headers."""
    if has_secret_path(request):
        response.headers.update(PRIVATE_LINK_HEADERS)
    for name, value in request.app[keys.SECURITY_HEADERS].items():
        response.headers.setdefault(name, value)
    request_id = request_id_var.get()
    if request_id:
        response.headers.setdefault("X-Request-Id", request_id)


_REQUEST_ID = re.compile(r"[\w.:/+=-]{1,128}", re.ASCII)


def _given_request_id(request: web.Request) -> str | None:
    """The load balancer's X-Request-Id when it is a plain token (it is logged, echoed and stored)."""
    given = request.headers.get("X-Request-Id")
    return given if given and _REQUEST_ID.fullmatch(given) else None


def _printable(value: str | None) -> str | None:
    """Header text as it can be stored: raw non-UTF-8 bytes become U+FFFD, NUL characters go."""
    if value is None:
        return None
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "")


@web.middleware
async def portal_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Request id, JSON errors and metrics in one middleware, so the hot path pays for one frame, not three."""
    request_id = _given_request_id(request) or uuid.uuid4().hex[:16]
    token = request_id_var.set(request_id)
    origin = origin_var.set(Origin(request_id, request.remote, _printable(request.headers.get("User-Agent"))))
    started = time.perf_counter()
    response = None
    try:
        try:
            check_request_text(request)
            response = await handler(request)
        except ApiError as exc:
            if exc.status == 400:  # malformed input: the client's mistake, worth a line, never a traceback
                log.warning("refused malformed input in %s %s: %s: %s", request.method, loggable_path(request),
                            exc.code, exc.message)
            if exc.status == 401 and not is_api_path(request.path):
                response = web.Response(status=302, headers={"Location": "/login?next=" + quote(request.path_qs, safe="/")})
            elif is_page(request.path):  # a form posted from a page (read-only, a stale CSRF token): a page says why
                response = await error_page(request, exc.status, message=exc.message)
            else:
                response = exc.response()
        except web.HTTPException as exc:
            if is_api_path(request.path) and exc.status >= 400:
                response = json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
            elif is_page(request.path) and exc.status >= 400:
                response = await error_page(request, exc.status, headers=dict(exc.headers))
            else:
                response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            # The database is away (restarting, failing over): say so at once and let clients retry.
            log.warning("database unavailable during %s %s: %s", request.method, loggable_path(request),
                        mask(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__))
            response = json_error(503, "database_unavailable", "the database is unavailable; retry shortly",
                                  **{"Retry-After": "5"})
            if is_page(request.path):
                response = await error_page(request, 503, request_id=request_id, headers={"Retry-After": "5"})
            elif not is_api_path(request.path):
                response = web.Response(status=503, text="The portal's database is unavailable; retry shortly.",
                                        headers={"Retry-After": "5"})
        except (ConnectionResetError, asyncio.CancelledError) as exc:
            # The client went away mid-request (aiohttp raises ConnectionResetError from a body read, or
            # cancels the handler): nobody to answer, and not the portal's error. Whatever the request was
            # doing has been undone on the way out (a partial upload is removed by the storage).
            log.info("client went away during %s %s", request.method, loggable_path(request))
            response = web.Response(status=CLIENT_CLOSED)
            if isinstance(exc, asyncio.CancelledError):
                raise
        except (UnicodeError, HttpProcessingError, psycopg2.DataError) as exc:
            # The backstop for input no parser above caught: bytes that are not UTF-8, a header or multipart
            # framing aiohttp refused, a value PostgreSQL refused. The client's mistake: 400, logged without a
            # traceback.
            status = exc.code if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500 else 400
            message = _first_line(exc)
            log.warning("refused malformed input in %s %s: %s", request.method, loggable_path(request), message)
            response = await _client_error(request, status, message)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, loggable_path(request))
            if is_api_path(request.path):
                response = json_error(500, "internal", f"internal error; quote request id {request_id}")
            elif is_page(request.path):
                response = await error_page(request, 500, request_id=request_id)
            else:
                response = web.Response(status=500, text=f"Internal error. Request id {request_id}.")
        if not response.prepared:  # streamed answers got it in add_headers, while the id was still current
            response.headers.setdefault("X-Request-Id", request_id)
        return response
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        status = response.status if response is not None else 500
        request.app[keys.METRICS].observe_request(route, request.method, status, time.perf_counter() - started)
        request_id_var.reset(token)
        origin_var.reset(origin)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


async def _client_error(request: web.Request, status: int, message: str) -> web.StreamResponse:
    """A 4xx for malformed input, in the shape the path answers errors in (JSON for the API, a page for people)."""
    if is_page(request.path):
        return await error_page(request, status)
    return json_error(status, "bad_request" if status == 400 else "unprocessable", f"the request is malformed: {message}")
