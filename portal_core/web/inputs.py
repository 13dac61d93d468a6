"""Reading client input safely: every handler parses its JSON body, form fields and query values through these.

Whatever the bytes, the answer is a 400 naming what was wrong — never a 500: bodies that are not UTF-8,
not JSON, nested absurdly deep, or carry NUL characters or lone surrogates (PostgreSQL cannot store
either in text) are refused here, once, for every route. The middleware checks every query value and
path segment with :func:`check_request_text`; secrets a client presents are compared with
:func:`same_secret`, which takes any text.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from .errors import bad_request

MAX_DEPTH = 32


def _check(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise bad_request(f"the JSON body is nested more than {MAX_DEPTH} levels deep", code="bad_json")
    if isinstance(value, str):
        check_text(value, "the JSON body")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(key, "the JSON body")
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


def check_text(value: str, where: str, *, code: str = "bad_text") -> str:
    """``value`` unless it holds a NUL character or a lone surrogate (400 naming ``where``)."""
    if "\x00" in value:
        raise bad_request(f"{where} contains a NUL character", code=code)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{where} contains a lone surrogate (invalid Unicode)", code=code) from None
    return value


def same_secret(presented: str, expected: str) -> bool:
    """Whether the secret a client presented is ``expected``, in constant time. Any text compares (a header
    of raw bytes arrives with surrogate escapes; ``hmac.compare_digest`` refuses non-ASCII str)."""
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def check_request_text(request: web.Request) -> None:
    """400 naming the query parameter (code ``bad_query``) or path segment (``bad_path``) that holds a NUL
    character or a lone surrogate."""
    for name, value in request.query.items():
        check_text(name, "a query parameter's name", code="bad_query")
        check_text(value, f"the query parameter '{name}'", code="bad_query")
    for name, value in request.match_info.items():
        check_text(value, f"the path's {name}", code="bad_path")


async def form(request: web.Request) -> MultiDictProxy:
    """The request's form fields (``application/x-www-form-urlencoded`` or ``multipart/form-data``), each
    text value checked like JSON text; a body that is not a readable form is a 400."""
    try:
        fields = await request.post()
    except (UnicodeDecodeError, ValueError, HttpProcessingError) as exc:
        raise bad_request(f"the form could not be read: {exc}", code="bad_form") from None
    for name, value in fields.items():
        if isinstance(value, str):
            check_text(value, f"the form field '{name}'")
    return fields


async def json_object(request: web.Request, example: str = '{"name": "ci"}') -> dict[str, Any]:
    """The request's JSON body as a dict, or a 400 saying what to send (``example`` shows the shape)."""
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad_request(f"send a JSON object, e.g. {example}", code="bad_json") from None
    if not isinstance(body, dict):
        raise bad_request(f"send a JSON object, e.g. {example}", code="bad_json")
    _check(body)
    return body


def optional_int(body: Mapping[str, Any], name: str, *, minimum: int = 0, maximum: int | None = None) -> int | None:
    """``body[name]`` as a whole number within bounds, None when absent or null; 400 naming it otherwise."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else "")
        raise bad_request(f"'{name}' must be a whole number {bounds}", code=f"bad_{name}")
    return value


def required_text(body: Mapping[str, Any], name: str, *, max_length: int) -> str:
    """``body[name]`` as non-empty, stripped text of at most ``max_length`` characters; 400 naming it otherwise."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > max_length:
        raise bad_request(f"'{name}' must be a non-empty string of at most {max_length} characters", code=f"bad_{name}")
    return value.strip()
