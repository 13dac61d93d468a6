"""Backends: the implementations plugins offer for the auth, storage and billing services.

A plugin offers a backend by returning a :class:`Backend` from ``portal_auth_backend``,
``portal_storage_backend`` or ``portal_billing_backend``. The core picks one per service by name
(AUTH_BACKEND, STORAGE_BACKEND, BILLING_BACKEND), validates only the selected backends' settings, and
opens only those — so a plugin imports its heavy vendor library inside ``open``, never at import time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .config import ConfigProblem

if TYPE_CHECKING:  # pragma: no cover - typing only
    import aiopg

    from .settings import CoreSettings

SERVICES = ("auth", "storage", "billing")
SERVICE_ENV = {"auth": "AUTH_BACKEND", "storage": "STORAGE_BACKEND", "billing": "BILLING_BACKEND"}
PRODUCTION_DEFAULTS = {"auth": "oidc", "storage": "r2", "billing": "stripe"}
DEV_DEFAULT = "dev"


@attrs.frozen
class BackendContext:
    """What a backend's ``open`` receives: its own validated settings, the core's, and the pool."""

    settings: Any
    core: CoreSettings
    pool: aiopg.Pool


@attrs.frozen
class Backend:
    """One implementation of a service, offered by a plugin.

    ``open(context)`` returns an async context manager yielding the service object (an
    :class:`~portal_core.interfaces.AuthProvider`, ``Storage`` or ``Billing``); it is entered at
    startup and exited at shutdown, so long-lived clients live exactly as long as the app.
    ``settings`` is the attrs settings class validated when (and only when) this backend is selected.
    ``development_only`` backends are refused in production.
    """

    name: str
    open: Callable[[BackendContext], contextlib.AbstractAsyncContextManager[Any]]
    settings: type | None = None
    development_only: bool = False
    description: str = ""


@attrs.frozen
class Selection:
    """The backend chosen for one service, and why (shown by `portal plugins`)."""

    service: str
    backend: Backend
    plugin: str
    reason: str


def offered(pm: Any) -> dict[str, list[tuple[str, Backend]]]:
    """Every (plugin name, backend) offered, per service."""
    result: dict[str, list[tuple[str, Backend]]] = {service: [] for service in SERVICES}
    for service in SERVICES:
        hook = getattr(pm.hook, f"portal_{service}_backend")
        for impl in hook.get_hookimpls():
            backend = impl.function()
            if backend is not None:
                result[service].append((impl.plugin_name, backend))
    return result


def wanted_names(env: Mapping[str, str], dev_mode: bool) -> dict[str, str]:
    """The backend name asked for per service: AUTH_BACKEND & co., else the mode's default."""
    return {service: env.get(variable, "").strip() or (DEV_DEFAULT if dev_mode else PRODUCTION_DEFAULTS[service])
            for service, variable in SERVICE_ENV.items()}


def select(pm: Any, env: Mapping[str, str], dev_mode: bool) -> tuple[dict[str, Selection], list[ConfigProblem]]:
    """Pick one backend per service by name; report every problem at once.

    Works even when other core settings are broken, so one run reports the backends' missing settings too.
    """
    selections: dict[str, Selection] = {}
    problems: list[ConfigProblem] = []
    asked = wanted_names(env, dev_mode)
    for service, candidates in offered(pm).items():
        wanted = asked[service]
        variable = SERVICE_ENV[service]
        names = sorted({b.name for _p, b in candidates})
        matches = [(plugin, b) for plugin, b in candidates if b.name == wanted]
        if not matches:
            problems.append(ConfigProblem(
                variable, f"no plugin offers a {service} backend named {wanted!r}",
                f"choose one of: {', '.join(names) or '(none installed)'}"))
            continue
        if len(matches) > 1:
            plugins = ", ".join(plugin for plugin, _b in matches)
            problems.append(ConfigProblem(
                variable, f"{len(matches)} plugins offer a {service} backend named {wanted!r}: {plugins}",
                "uninstall one, or block it with PORTAL_DISABLE_PLUGINS"))
            continue
        plugin, backend = matches[0]
        if backend.development_only and not dev_mode:
            problems.append(ConfigProblem(
                variable, f"{wanted!r} is a development-only {service} backend and DEV_MODE is off",
                f"production needs a real backend (for example {PRODUCTION_DEFAULTS[service]!r}), or set DEV_MODE=true on a laptop"))
            continue
        reason = f"{variable}={wanted}" if env.get(variable, "").strip() else (
            f"default for {'DEV_MODE' if dev_mode else 'production'} ({variable} not set)")
        selections[service] = Selection(service, backend, plugin, reason)
    return selections, problems
