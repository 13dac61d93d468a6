"""The API's OpenAPI 3.1 description, built from the router: each JSON handler carries its own operation.

Decorate every API handler — core or plugin — with :func:`operation`; ``GET /api/openapi.json`` walks the
application's routes and describes each decorated one, so the description cannot drift from the router
(tests/core/test_openapi.py fails for an API route without an operation).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from . import __version__, keys

ATTRIBUTE = "__portal_openapi__"
# Paths that are the API (JSON in, JSON out): every route under them must be described, and their errors
# are JSON (a person's browser gets a styled page everywhere else; portal_core.web.middleware).
API_PREFIXES = ("/api/", "/webhooks/", "/health/")
API_PATHS = ("/health", "/metrics")
AUTH_KINDS = ("none", "user", "session", "admin")

_STATUS_TEXT = {
    200: "OK", 201: "Created", 204: "No content", 302: "Redirect", 400: "The input is malformed; the message says how",
    401: "Not signed in, or the credential is invalid or expired", 403: "Refused (CSRF token missing, or outside the token's scopes)",
    404: "No such thing (or it is not yours)", 409: "Conflicts with the current state", 410: "Gone",
    413: "Larger than the plan's limits allow; the message names the limit", 422: "Refused by a policy; the message says why",
    429: "Too many attempts; try later", 501: "Not supported by the selected backend",
    503: "A dependency (database, storage, billing) is unavailable; retry later",
}
ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
}


def operation(summary: str, *, description: str = "", tags: Sequence[str] = (), auth: str = "user",
              body: Mapping[str, Any] | None = None, body_type: str = "application/json", body_required: bool = True,
              query: Mapping[str, Mapping[str, Any]] | None = None, required_query: Sequence[str] = (),
              responses: Mapping[int, str] | None = None, response: Mapping[str, Any] | None = None,
              response_type: str = "application/json") -> Callable:
    """Describe an API handler for the OpenAPI document.

    :param summary: one line, what the operation does.
    :param auth: "none" (public), "user" (a session cookie or an API token), "session" (a signed-in
        browser only) or "admin" (an admin's session or an admin-scoped token).
    :param body: the JSON Schema of the request body (``body_type`` says its media type).
    :param query: query parameters, name -> JSON Schema; ``required_query`` names the required ones.
    :param responses: status -> description, for statuses beyond the usual ones of ``auth``.
    :param response: the JSON Schema of the success body.
    """
    if auth not in AUTH_KINDS:
        raise ValueError(f"auth must be one of {AUTH_KINDS}, got {auth!r}")
    spec = {"summary": summary, "description": description, "tags": list(tags), "auth": auth, "body": body,
            "body_type": body_type, "body_required": body_required, "query": dict(query or {}),
            "required_query": list(required_query), "responses": dict(responses or {}), "response": response,
            "response_type": response_type}

    def mark(handler: Callable) -> Callable:
        setattr(handler, ATTRIBUTE, spec)
        return handler

    return mark


def described(handler: Callable) -> dict | None:
    return getattr(handler, ATTRIBUTE, None)


def is_api_path(path: str) -> bool:
    """The one answer to "is this the API?", for the OpenAPI router parity and for how errors are answered."""
    return path.startswith(API_PREFIXES) or path in API_PATHS


_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _path_and_params(canonical: str) -> tuple[str, list[dict]]:
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in _PARAM.findall(canonical)]
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", canonical), params


def _operation(method: str, handler: Callable, spec: dict, path_params: list[dict]) -> dict:
    op: dict[str, Any] = {"summary": spec["summary"], "operationId": f"{handler.__module__}.{handler.__name__}.{method.lower()}"}
    if spec["description"]:
        op["description"] = spec["description"]
    if spec["tags"]:
        op["tags"] = spec["tags"]
    params = list(path_params) + [
        {"name": name, "in": "query", "required": name in spec["required_query"], "schema": dict(schema)}
        for name, schema in spec["query"].items()]
    if params:
        op["parameters"] = params
    if spec["body"] is not None:
        op["requestBody"] = {"required": spec["body_required"], "content": {spec["body_type"]: {"schema": spec["body"]}}}
    auth = spec["auth"]
    if auth == "none":
        op["security"] = []
    elif auth == "session":
        op["security"] = [{"session": [], "csrf": []}] if method not in ("GET", "HEAD") else [{"session": []}]
    else:
        cookie = [{"session": [], "csrf": []}] if method not in ("GET", "HEAD") else [{"session": []}]
        op["security"] = cookie + [{"token": ["admin"] if auth == "admin" else []}]
    statuses = dict(spec["responses"])
    success = 201 if method == "POST" and 201 in statuses else next((s for s in statuses if s < 400), 200)
    statuses.setdefault(success, _STATUS_TEXT.get(success, "OK"))
    if auth != "none":
        statuses.setdefault(401, _STATUS_TEXT[401])
        if method not in ("GET", "HEAD") or auth in ("user", "admin"):  # CSRF, or a token's scopes
            statuses.setdefault(403, _STATUS_TEXT[403])
    if path_params:
        statuses.setdefault(404, _STATUS_TEXT[404])
    if spec["body"] is not None or spec["query"]:
        statuses.setdefault(400, _STATUS_TEXT[400])
    statuses.setdefault(503, _STATUS_TEXT[503])
    responses = {}
    for status in sorted(statuses):
        entry: dict[str, Any] = {"description": statuses[status] or _STATUS_TEXT.get(status, "")}
        if status >= 400:
            entry["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        elif status == success and spec["response"] is not None:
            entry["content"] = {spec["response_type"]: {"schema": spec["response"]}}
        responses[str(status)] = entry
    op["responses"] = responses
    return op


def build_spec(app: web.Application) -> dict:
    """The OpenAPI 3.1 document for every described route of ``app``."""
    paths: dict[str, dict] = {}
    for route in app.router.routes():
        spec = described(route.handler)
        if spec is None or route.method == "HEAD" or route.resource is None:
            continue
        path, path_params = _path_and_params(route.resource.canonical)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route.method, route.handler, spec, path_params)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Portal API", "version": __version__,
                 "description": "Artifacts, API tokens and billing of the customer portal. Errors are "
                                "{\"error\": {\"code\", \"message\"}} with the status saying what kind."},
        "servers": [{"url": app[keys.CONFIG].core.base_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "portal_session",
                            "description": "the browser session (sign in at /auth/login)"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                         "description": "with a session, every state-changing request carries csrf_token from GET /api/me"},
                "token": {"type": "http", "scheme": "bearer", "description": "an API token (pt_...) from the account page"},
            },
        },
    }


@operation("This OpenAPI description", auth="none", tags=["meta"], response={"type": "object"})
async def openapi_json(request: web.Request) -> web.Response:
    cache = request.app[keys.OPENAPI]
    if "spec" not in cache:
        cache["spec"] = build_spec(request.app)
    return web.json_response(cache["spec"], headers={"Cache-Control": "no-cache"})
