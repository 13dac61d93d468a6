"""create_app(config) -> web.Application: the one way the portal is built, by the CLI and the tests.

Startup is ordered and torn down in reverse (aiohttp cleanup_ctx): pool → schema → site switches → services →
housekeeping → ``portal_startup`` hooks → the event outbox → the SHA-256 verifier of direct uploads (so
handlers find what startup hooks set up, and stop before shutdown hooks run). Nothing here is global: it all lives on the Application (portal_core.keys).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator

import pluggy
from aiohttp import web

from . import __version__, keys
from .backends import BackendContext
from .db import apply_schema, create_pool, schema_parts
from .housekeeping import housekeeping
from .logs import ClientErrorsAsWarnings
from .interfaces import AuthProvider, Billing, DirectUploads, Storage
from .metrics import Metrics
from .outbox import Outbox, OutboxSettings, consumers_of
from .plugins import compatibility_warnings, make_plugin_manager, trace_hook_calls
from .settings import Config
from .site import SiteSwitches, read_only_guard, site_switches
from .verification import Verifier
from .web.assets import load_assets
from .web.plugin_static import load_plugin_static, plugin_static_routes
from .web.health import Lifecycle, stop_refresh
from .web.middleware import add_headers, content_security_policy, portal_middleware, security_headers
from .web.routes import core_routes

log = logging.getLogger("portal")

SERVICE_KEYS = {"auth": (keys.AUTH, AuthProvider), "storage": (keys.STORAGE, Storage), "billing": (keys.BILLING, Billing)}
# JSON bodies and webhooks only; uploads stream through request.multipart() and are not bound by this.
MAX_BUFFERED_BODY = 4 * 1024 * 1024


def create_app(config: Config, pm: pluggy.PluginManager | None = None) -> web.Application:
    """Build the application for a validated ``config``. Nothing is opened until the app starts."""
    if config.core.database_url is None:
        raise ValueError("create_app needs config.core.database_url (the CLI provisions one in DEV_MODE)")
    pm = pm or make_plugin_manager(config.core.disable_plugins)
    if config.core.trace_hooks:
        trace_hook_calls(pm)
    app = web.Application(middlewares=[portal_middleware, read_only_guard], client_max_size=MAX_BUFFERED_BODY,
                          handler_args={"logger": ClientErrorsAsWarnings(logging.getLogger("aiohttp.server"))})
    app[keys.CONFIG] = config
    app[keys.PLUGIN_MANAGER] = pm
    app[keys.METRICS] = Metrics()
    app[keys.ASSETS] = load_assets(config.core.dev_mode)
    app[keys.HEALTH_CACHE] = {}
    app[keys.OPENAPI] = {}
    app[keys.LIFECYCLE] = Lifecycle()
    app[keys.SITE] = SiteSwitches()
    app[keys.SECURITY_HEADERS] = security_headers(content_security_policy(""))
    app[keys.PLUGIN_STATIC] = load_plugin_static(pm, config)
    app[keys.DIRECT_UPLOADS] = None
    app[keys.VERIFIER] = Verifier(app)
    app[keys.OUTBOX] = Outbox(app, consumers_of(pm), OutboxSettings(
        max_attempts=config.core.events_max_attempts, retry_seconds=config.core.events_retry_seconds,
        handler_timeout=config.core.events_handler_timeout, poll_seconds=config.core.events_poll_seconds))
    app.add_routes(core_routes())
    app.add_routes(plugin_static_routes(app[keys.PLUGIN_STATIC]))
    for routes in pm.hook.portal_routes(config=config):
        app.add_routes(routes or [])
    app.on_response_prepare.append(add_headers)
    app.on_cleanup.append(stop_refresh)
    app.cleanup_ctx.extend([_pool, _schema, site_switches, _services, housekeeping, _startup_hooks, _outbox,
                            _verifier])
    for warning in compatibility_warnings(pm):
        log.warning("%s", warning)
    if config.core.dev_mode:
        log.warning("DEV_MODE is on: development sign-in, storage and billing may be selected. "
                    "Never run a public portal like this.")
    return app


async def _pool(app: web.Application) -> AsyncIterator[None]:
    core = app[keys.CONFIG].core
    pool = await create_pool(core.database_url, connect_timeout=core.database_connect_timeout)
    app[keys.POOL] = pool
    yield
    pool.close()
    await pool.wait_closed()


async def _schema(app: web.Application) -> AsyncIterator[None]:
    result = await apply_schema(app[keys.POOL], schema_parts(app[keys.PLUGIN_MANAGER], app[keys.CONFIG]),
                                version=__version__)
    app[keys.METRICS].schema_apply_seconds = result.seconds
    log.info("schema %s applied in %.0f ms%s", result.schema_hash[:12], result.seconds * 1000,
             " (recorded as a new provisioning)" if result.recorded else "")
    yield


async def _services(app: web.Application) -> AsyncIterator[None]:
    config = app[keys.CONFIG]
    async with contextlib.AsyncExitStack() as stack:
        for service, selection in config.selections.items():
            context = BackendContext(settings=config.backend_settings(service), core=config.core, pool=app[keys.POOL])
            instance = await stack.enter_async_context(selection.backend.open(context))
            key, protocol = SERVICE_KEYS[service]
            if not isinstance(instance, protocol):
                raise TypeError(f"plugin {selection.plugin!r}: backend {selection.backend.name!r} does not "
                                f"implement {protocol.__name__}")
            app[key] = instance
            log.info("%s: %s (plugin %s; %s)", service, selection.backend.name, selection.plugin, selection.reason)
        storage = app[keys.STORAGE]
        if isinstance(storage, DirectUploads):
            app[keys.DIRECT_UPLOADS] = storage
            log.info("storage %s offers direct uploads: /api/s3 is open (parts go to %s)", storage.name,
                     ", ".join(storage.upload_origins) or "the portal itself")
        else:
            log.info("storage %s does not offer direct uploads: /api/s3 answers 501, uploads stream through "
                     "POST /api/artifacts", storage.name)
        origins = " ".join(getattr(app[keys.AUTH], "form_action_origins", ()) or ())
        uploads = " ".join(storage.upload_origins) if app[keys.DIRECT_UPLOADS] is not None else ""
        app[keys.SECURITY_HEADERS] = security_headers(content_security_policy(origins, uploads))
        yield


async def _startup_hooks(app: web.Application) -> AsyncIterator[None]:
    pm = app[keys.PLUGIN_MANAGER]
    for result in pm.hook.portal_startup(app=app):
        if inspect.isawaitable(result):
            await result
    yield
    for result in pm.hook.portal_shutdown(app=app):
        try:
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("a portal_shutdown hook failed; shutting down anyway")


async def _outbox(app: web.Application) -> AsyncIterator[None]:
    outbox = app[keys.OUTBOX]
    await outbox.start()
    yield
    await outbox.stop()


async def _verifier(app: web.Application) -> AsyncIterator[None]:
    verifier = app[keys.VERIFIER]
    await verifier.start()
    yield
    await verifier.stop()
