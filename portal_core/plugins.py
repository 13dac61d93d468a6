"""Builds the plugin manager: every plugin, built-in or third party, comes through entry points."""

from __future__ import annotations

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
