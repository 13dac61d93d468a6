"""Builds the plugin manager: every plugin, built-in or third party, comes through entry points."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "portal"


def make_plugin_manager(disabled: Iterable[str] = (), extra: Iterable[object] = ()) -> pluggy.PluginManager:
    """A plugin manager with every ``portal`` entry point loaded except the ``disabled`` names.

    ``extra`` registers plugin objects directly (tests use it for plugins defined in a test module).
    Raises ``pluggy.PluginValidationError`` for a hookimpl that matches no hook.
    """
    pm = pluggy.PluginManager("portal")
    pm.add_hookspecs(hookspecs)
    for name in disabled:
        pm.set_blocked(name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return pm


def describe_plugins(pm: pluggy.PluginManager) -> list[dict]:
    """Each registered plugin: name, distribution and version, and the hooks it implements."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        rows.append({
            "name": name,
            "distribution": dist.project_name if dist else "(registered directly)",
            "version": dist.version if dist else "",
            "hooks": hooks,
        })
    return rows


def trace_hook_calls(pm: pluggy.PluginManager, logger: logging.Logger | None = None) -> None:
    """Log every hook call with the plugins it reached, how long it took and how it ended (PORTAL_TRACE_HOOKS).

    Uses pluggy's hook-call monitoring; an awaitable a hook returns is timed up to its return, not its end.
    """
    logger = logger or logging.getLogger("portal.hooks")
    # Per thread: sync portal_event handlers are called from worker threads while the loop calls others.
    local = threading.local()

    def before(hook_name, hook_impls, kwargs) -> None:
        local.__dict__.setdefault("started", []).append(time.perf_counter())

    def after(outcome, hook_name, hook_impls, kwargs) -> None:
        started = local.__dict__.get("started") or [time.perf_counter()]
        took = (time.perf_counter() - started.pop()) * 1000
        plugins = ",".join(impl.plugin_name for impl in hook_impls) or "(none)"
        exc = outcome.exception
        result = f"raised {type(exc).__name__}: {exc}" if exc is not None else "ok"
        logger.info("hook %s plugins=%s took=%.2fms outcome=%s", hook_name, plugins, took, result)

    pm.add_hookcall_monitoring(before, after)
