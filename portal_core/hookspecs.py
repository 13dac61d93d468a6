"""Every hook a plugin can implement. This module is the contract between the core and plugins.

Implement a hook with ``portal_core.hookimpl`` in a module registered under the ``portal``
entry-point group. Every hook name starts with ``portal_``; a misspelt hookimpl fails at startup
(the plugin manager calls ``check_pending()``). docs/plugins.md explains each hook with an example;
tests/core/test_plugins.py fails when a hook here has no entry there or no test.

:data:`HOOKS_VERSION` versions this contract (docs/plugins.md, "Compatibility"): the minor number grows
when hooks or hook arguments are added, the major number when one is renamed or removed — which happens
only after a release in which the old hook is marked with :func:`deprecated` (pluggy's ``warn_on_impl``).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover - typing only
    from aiohttp import web

    from .backends import Backend
    from .config import ConfigSection
    from .events import Event
    from .interfaces import User
    from .settings import Config, Limits

hookspec = pluggy.HookspecMarker("portal")
hookimpl = pluggy.HookimplMarker("portal")

# MAJOR.MINOR of the hooks below. Bump MINOR for a new hook or a new argument (old plugins keep working);
# MAJOR for a renamed or removed hook or argument, one release after it was marked deprecated.
# The changelog is in docs/plugins.md ("Compatibility"); a plugin states what it needs with a module
# attribute PORTAL_REQUIRES_HOOKS = "1.2", and `portal plugins` warns when this core is older.
HOOKS_VERSION = "1.2"


class HookDeprecationWarning(DeprecationWarning):
    """A plugin implements a hook (or a hook argument) that a future hooks version removes or renames."""


def deprecated(*, since: str, removed_in: str, replacement: str | None = None, **options):
    """Mark a hookspec as deprecated: every plugin implementing it gets a :class:`HookDeprecationWarning`
    when it is registered (pluggy's ``warn_on_impl``), naming the replacement, and `portal plugins` lists it.

    A renamed hook keeps its old spec under this marker for at least one minor release, and the core keeps
    calling it next to the new one; it is removed only in the next major hooks version::

        @deprecated(since="1.3", removed_in="2.0", replacement="portal_new_name")
        def portal_old_name(...): ...
    """
    def mark(function):
        text = (f"{function.__name__} is deprecated since hooks {since} and is removed in hooks {removed_in}"
                + (f"; implement {replacement} instead" if replacement else ""))
        function.portal_deprecation = {"since": since, "removed_in": removed_in, "replacement": replacement}
        return hookspec(warn_on_impl=HookDeprecationWarning(text), **options)(function)

    return mark


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


# ---------------------------------------------------------------------------------------------------
# Reacting to what happens


@hookspec
def portal_event(event: Event, app: web.Application) -> Awaitable[None] | None:
    """Receive one event (a fact such as ``artifact.created``) after the transaction that recorded it committed.

    :param event: the :class:`~portal_core.events.Event`: ``id``, ``type``, ``occurred_at``, ``actor_id``,
        ``owner_id``, ``subject_id``, ``data``, ``request_id``, ``ip``, ``user_agent``.
    :param app: the running application: the pool, config and services are under :mod:`portal_core.keys`.

    Delivery is at least once, from a transactional outbox in PostgreSQL: an event recorded just before
    the process died is delivered after a restart, and with several processes each delivery is made by
    one of them. A handler may therefore see an event twice and should be idempotent (``event.id`` is
    unique). May be sync (run in a worker thread) or return an awaitable. Raising makes the core retry
    the delivery with backoff; after repeated failures it is parked (``portal events`` lists it,
    ``portal events retry PLUGIN`` tries again). A handler never slows the request that caused the event,
    nor other plugins' deliveries. docs/events.md lists every event type.
    """


# ---------------------------------------------------------------------------------------------------
# Policy


@hookspec
def portal_check_upload(user: User, plan: str, filename: str, content_type: str, size: int | None,
                        head: bytes | None, config: Config) -> str | Awaitable[str | None] | None:
    """Allow or refuse an upload before any byte of it is stored, on every upload path.

    :param user: the :class:`~portal_core.interfaces.User` the file will belong to.
    :param plan: the name of that user's current plan ("free", "pro", ...), for per-plan rules (hooks 1.2).
    :param filename: the name as given (any text; never a path to trust).
    :param content_type: the declared media type (``application/octet-stream`` when none was given).
    :param size: the size in bytes when known in advance (direct uploads declare it), else None.
    :param head: the file's first bytes (up to 4 KiB, fewer for a smaller file) when the portal has them
        before storing — the streamed upload reads them first — for sniffing magic bytes; None when the
        bytes do not pass through the portal (a direct upload at creation; it is asked again with the head
        read back from storage before the artifact is committed, and a refusal then removes the object).
    :param config: the validated configuration (your settings are in ``config.sections``).

    Return a sentence to refuse (the client gets 422 with it and nothing is stored), or None to allow.
    May return an awaitable. Every plugin is asked; the first refusal wins (pluggy asks the most recently
    registered plugin first; mark yours ``tryfirst=True`` to be asked before the others).
    """


@hookspec(firstresult=True)
def portal_limits(user: User, plan: str, limits: Limits, config: Config) -> Limits | None:
    """Replace the storage limits that apply to one user (per-user or per-team rules).

    :param user: the :class:`~portal_core.interfaces.User`.
    :param plan: the name of the user's current plan ("free", "pro", ...).
    :param limits: the :class:`~portal_core.settings.Limits` the core would apply (the plan's, or an
        admin's override).
    :param config: the validated configuration.

    Return the ``Limits`` to use instead, or None to keep them. Stops at the first non-None result.
    Called on every upload and every ``/api/me``, so keep it fast (no remote calls).
    """


# ---------------------------------------------------------------------------------------------------
# User interface and command line


@hookspec
def portal_nav_items(user: User | None, config: Config) -> Sequence[dict[str, str]] | None:
    """Links to add to the header of every page.

    :param user: the signed-in :class:`~portal_core.interfaces.User`, or None on a signed-out page.
    :param config: the validated configuration.

    Return a list of ``{"label": "Reports", "href": "/reports"}``, or None. The core's own pages read them
    from ``GET /api/me`` (``nav``); server-rendered pages get them through the shared layout
    (:func:`portal_core.web.html.render_page`). Labels are text, never HTML; hrefs must be same-origin
    paths.
    """


@hookspec
def portal_static(config: Config) -> str | Path | None:
    """A directory of static files to serve at ``/plugins/<plugin name>/<path>``.

    :param config: the validated configuration.

    Return the directory's path (for example ``Path(__file__).parent / "static"``), or None. Files are
    served with the same caching and Content-Security-Policy rules as the core's own assets.
    """


@hookspec
def portal_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``portal <command>`` subcommands.

    :param subparsers: the ``portal`` parser's subparsers; call ``subparsers.add_parser(...)`` and set
        ``func`` with ``set_defaults(func=...)``. ``func(args)`` returns the exit status.

    Called every time the ``portal`` command builds its parser, before any configuration is read, so
    import nothing heavy here.
    """
