"""Builds the plugin manager: every plugin, built-in or third party, comes through entry points."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "portal"
# A plugin module (or object) may say which hooks version it needs: PORTAL_REQUIRES_HOOKS = "1.2".
REQUIRES_ATTRIBUTE = "PORTAL_REQUIRES_HOOKS"


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
            "requires_hooks": getattr(plugin, REQUIRES_ATTRIBUTE, None),
        })
    return rows


def _version(text: object) -> tuple[int, int] | None:
    major, dot, minor = str(text).strip().partition(".")
    return (int(major), int(minor)) if dot and major.isdigit() and minor.isdigit() else None


def compatibility_warnings(pm: pluggy.PluginManager, core: str = hookspecs.HOOKS_VERSION) -> list[str]:
    """Sentences for the operator: plugins that need a newer hooks version than this core provides, were
    written for an older major version, or implement deprecated hooks (docs/plugins.md, "Compatibility")."""
    have = _version(core)
    warnings = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        declared = getattr(plugin, REQUIRES_ATTRIBUTE, None)
        if declared is not None:
            wanted = _version(declared)
            if wanted is None:
                warnings.append(f"plugin {name}: {REQUIRES_ATTRIBUTE} = {declared!r} is not a MAJOR.MINOR version "
                                f"such as {core!r}")
            elif wanted[0] > have[0] or (wanted[0] == have[0] and wanted[1] > have[1]):
                warnings.append(f"plugin {name} needs hooks {declared}, but this portal provides hooks {core}: "
                                "upgrade the portal, or use a release of the plugin made for it")
            elif wanted[0] < have[0]:
                warnings.append(f"plugin {name} was written for hooks {wanted[0]}.x, and this portal provides "
                                f"hooks {core}, which renamed or removed hooks: check it against docs/plugins.md")
        for caller in pm.get_hookcallers(plugin) or ():
            deprecation = getattr(caller.spec.function, "portal_deprecation", None) if caller.spec else None
            if deprecation:
                use = f"; implement {deprecation['replacement']} instead" if deprecation["replacement"] else ""
                warnings.append(f"plugin {name} implements {caller.name}, deprecated since hooks "
                                f"{deprecation['since']} and removed in hooks {deprecation['removed_in']}{use}")
    return warnings


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
