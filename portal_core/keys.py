"""Every ``web.AppKey`` in one place: what lives on the Application instead of in globals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy
from aiohttp import web

if TYPE_CHECKING:  # pragma: no cover - typing only
    from .interfaces import AuthProvider, Billing, Storage
    from .settings import Config

CONFIG = web.AppKey("config", "Config")
PLUGIN_MANAGER = web.AppKey("plugin_manager", pluggy.PluginManager)
POOL = web.AppKey("pool", Any)  # aiopg.Pool
AUTH = web.AppKey("auth", "AuthProvider")
STORAGE = web.AppKey("storage", "Storage")
BILLING = web.AppKey("billing", "Billing")
METRICS = web.AppKey("metrics", Any)  # portal_core.metrics.Metrics
ASSETS = web.AppKey("assets", Any)  # portal_core.web.assets.Assets
HEALTH_CACHE = web.AppKey("health_cache", Any)
LIFECYCLE = web.AppKey("lifecycle", Any)  # portal_core.web.health.Lifecycle: draining after SIGTERM
SECURITY_HEADERS = web.AppKey("security_headers", dict)
OUTBOX = web.AppKey("outbox", Any)  # portal_core.outbox.Outbox
PLUGIN_STATIC = web.AppKey("plugin_static", dict)  # plugin name -> portal_core.web.assets.Assets
OPENAPI = web.AppKey("openapi", dict)  # {"spec": the OpenAPI document, built on first request}
SITE = web.AppKey("site", Any)  # portal_core.site.SiteSwitches: this process's copy of the site switches
