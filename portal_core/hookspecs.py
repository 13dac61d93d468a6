"""Every hook a plugin can implement. This module is the contract between the core and plugins.

Implement a hook with ``portal_core.hookimpl`` in a module registered under the ``portal``
entry-point group. Every hook name starts with ``portal_``; a misspelt hookimpl fails at startup
(the plugin manager calls ``check_pending()``). docs/plugins.md explains each hook with an example;
tests/core/test_hookspecs.py fails when a hook here has no entry there or no test.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    from aiohttp import web

    from .backends import Backend
    from .config import ConfigSection
    from .settings import Config

hookspec = pluggy.HookspecMarker("portal")
hookimpl = pluggy.HookimplMarker("portal")


@hookspec
def portal_auth_backend() -> Backend | None:
    """Offer an auth implementation (an :class:`~portal_core.interfaces.AuthProvider`).

    Return a :class:`~portal_core.backends.Backend` whose ``name`` AUTH_BACKEND selects, or None.
    Its settings are validated and its ``open`` is entered only when it is selected, so import
    heavy libraries inside ``open``. Called once while the configuration is loaded.
    """


@hookspec
def portal_storage_backend() -> Backend | None:
    """Offer a storage implementation (a :class:`~portal_core.interfaces.Storage`).

    Return a :class:`~portal_core.backends.Backend` whose ``name`` STORAGE_BACKEND selects, or None.
    Same rules as :func:`portal_auth_backend`.
    """


@hookspec
def portal_billing_backend() -> Backend | None:
    """Offer a billing implementation (a :class:`~portal_core.interfaces.Billing`).

    Return a :class:`~portal_core.backends.Backend` whose ``name`` BILLING_BACKEND selects, or None.
    Same rules as :func:`portal_auth_backend`.
    """


@hookspec
def portal_config_sections() -> list[ConfigSection] | None:
    """Contribute settings this plugin always requires, whichever backends are selected.

    Return a list of :class:`~portal_core.config.ConfigSection`. They are validated with the core's
    settings and every problem is reported at once; the values are on ``config.sections[name]``.
    (Settings that only matter when a backend is selected belong on ``Backend.settings`` instead.)
    """


@hookspec
def portal_routes(config: Config) -> list[web.AbstractRouteDef] | None:
    """Contribute HTTP routes (``aiohttp.web.RouteDef`` objects, e.g. from ``web.get``).

    :param config: the validated configuration, so a plugin can add routes only when its backend is
        selected (``config.selections["auth"].backend.name``).

    Called once by ``create_app`` before the router is frozen. Handlers find the services, pool and
    config on ``request.app`` under the keys in :mod:`portal_core.keys`.
    """


@hookspec
def portal_schema_sql(config: Config) -> str | None:
    """Contribute SQL applied after the core schema, in the same transaction and advisory lock.

    :param config: the validated configuration.

    The SQL runs at every start, so it must be idempotent (``CREATE … IF NOT EXISTS``,
    ``ADD COLUMN IF NOT EXISTS``, DO blocks). Never drop or rewrite objects: an older build may run
    against a database a newer one provisioned. Plugins are applied in registration order.
    """


@hookspec
def portal_startup(app: web.Application) -> Awaitable[None] | None:
    """Called once the database is provisioned and the services are open, before the port serves.

    :param app: the application; services, pool and config are under :mod:`portal_core.keys`.

    May return an awaitable; the core awaits it. An exception stops the startup.
    """


@hookspec
def portal_shutdown(app: web.Application) -> Awaitable[None] | None:
    """Called at shutdown, before the services and the pool close (reverse of startup).

    :param app: the application.

    May return an awaitable; the core awaits it. Exceptions are logged and do not stop the shutdown.
    """
