"""Outgoing webhooks for customers: their account's events, POSTed to their endpoints as Standard Webhooks.

A built-in plugin built only on public hooks and the public plugin API (docs/plugins.md, "The public
plugin API"; tests/core/test_plugin_api.py checks): ``portal_config_sections`` (WEBHOOKS_*),
``portal_schema_sql`` (its tables), ``portal_routes`` (the API and the page), ``portal_nav_items`` (the
header link), ``portal_event`` (queues each event for its owner's endpoints, and returns), and
``portal_startup`` / ``portal_shutdown`` (the background deliverer that sends, retries and logs).
"""

from __future__ import annotations

from importlib import resources

from portal_core import hookimpl
from portal_core.config import ConfigSection

PORTAL_REQUIRES_HOOKS = "1.1"  # portal_event and portal_nav_items


@hookimpl
def portal_config_sections():
    from .settings import WebhooksSettings

    return [ConfigSection("webhooks", WebhooksSettings, "outgoing webhooks for customers")]


@hookimpl
def portal_schema_sql(config):
    return resources.files(__name__).joinpath("schema.sql").read_text(encoding="utf-8")


@hookimpl
def portal_routes(config):
    from .api import routes

    return routes()


@hookimpl
def portal_nav_items(user, config):
    from .pages import PATH

    return [{"label": "Webhooks", "href": PATH}] if user is not None else None


@hookimpl
async def portal_event(event, app):
    # Only queue here (one INSERT) and let the deliverer send: a slow receiver must not hold up delivery
    # of the portal's events to this or any plugin.
    from portal_core import keys

    from .endpoints import wake
    from .messages import queue_event

    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        queued = await queue_event(cur, event)
    if queued:
        wake(app)


@hookimpl
async def portal_startup(app):
    from portal_core import keys

    from .deliver import DELIVERER, Deliverer
    from .endpoints import settings_of

    attempts = app[keys.METRICS].counter("portal_webhook_attempts_total", "Outgoing webhook delivery attempts by "
                                         "outcome: delivered, retrying (failed, tried again later), failed (gave up)",
                                         ["outcome"])
    deliverer = Deliverer(app, settings_of(app), attempts)
    await deliverer.start()
    app[DELIVERER] = deliverer


@hookimpl
async def portal_shutdown(app):
    from .deliver import DELIVERER

    deliverer = app.get(DELIVERER)
    if deliverer is not None:
        await deliverer.stop()
