"""The core's routes, in one table so the whole surface reads at a glance."""

from __future__ import annotations

from aiohttp import web

from .. import openapi
from . import (account, admin, artifacts, assets, auth, direct, file_requests, health, request_direct, request_pages,
               share_pages, shares, tokens, upload)


def core_routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/health", health.ready),
        web.get("/health/ready", health.ready),
        web.get("/health/live", health.live),
        web.get("/metrics", health.metrics),
        web.get("/login", auth.login_page),
        web.get("/auth/login", auth.login),
        web.get("/auth/callback", auth.callback),
        web.post("/auth/callback", auth.callback),
        web.post("/auth/logout", auth.logout),
        web.get("/api/openapi.json", openapi.openapi_json),
        web.get("/api/meta", account.meta),
        web.get("/api/me", account.me),
        web.get("/api/artifacts", artifacts.list_artifacts),
        web.post("/api/artifacts", upload.upload),
        web.get("/api/artifacts/{id}", artifacts.show_artifact),
        web.get("/api/artifacts/{id}/download", artifacts.download_artifact),
        web.delete("/api/artifacts/{id}", artifacts.delete_artifact),
        *direct.routes(),
        web.get("/api/tokens", tokens.list_tokens),
        web.post("/api/tokens", tokens.create_token),
        web.delete("/api/tokens/{id}", tokens.revoke_token),
        *shares.routes(),
        *share_pages.routes(),
        *file_requests.routes(),
        *request_pages.routes(),
        *request_direct.routes(),
        web.get("/api/billing/plans", account.billing_plans),
        web.post("/api/billing/checkout", account.checkout),
        web.post("/api/billing/portal", account.billing_portal),
        web.get("/billing/success", account.checkout_success),
        web.post("/webhooks/{backend}", account.webhook),
        web.get("/static/{version}/{path:.+}", assets.static_file),
        web.get("/favicon.ico", assets.favicon),
        *(web.get(path, assets.page) for path in assets.PAGES),
        *admin.routes(),
    ]
