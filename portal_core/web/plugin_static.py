"""Static files from plugins (the ``portal_static`` hook), served at /plugins/<plugin name>/<path>.

Read once at startup like the core's assets, served with the same security headers (CSP and friends are
added to every answer) and revalidated by ETag: the URLs are stable, so browsers ask again (cheaply,
304) instead of caching a plugin's old file for a year.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from .. import keys
from .assets import Assets, read_tree

log = logging.getLogger("portal.plugins")

REVALIDATE = "no-cache"


def load_plugin_static(pm, config) -> dict[str, Assets]:
    """Each plugin's ``portal_static`` directory, read into memory, keyed by plugin name."""
    found: dict[str, Assets] = {}
    for impl in pm.hook.portal_static.get_hookimpls():
        directory = impl.function(*[config for name in impl.argnames if name == "config"])
        if directory is None:
            continue
        root = Path(directory)
        if not root.is_dir():
            raise ValueError(f"plugin {impl.plugin_name!r}: portal_static returned {str(root)!r}, which is not a directory")
        files, version = read_tree(root)
        found[impl.plugin_name] = Assets(version, files)
        log.debug("serving %d static file(s) of plugin %s at /plugins/%s/", len(files), impl.plugin_name, impl.plugin_name)
    return found


async def plugin_file(request: web.Request) -> web.Response:
    static = request.app[keys.PLUGIN_STATIC].get(request.match_info["plugin"])
    entry = static.files.get(request.match_info["path"]) if static else None
    if entry is None:
        raise web.HTTPNotFound(text="no such plugin file")
    data, ctype = entry
    etag = f'"{static.version}"'
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers={"ETag": etag, "Cache-Control": REVALIDATE})
    return web.Response(body=data, content_type=ctype, headers={"ETag": etag, "Cache-Control": REVALIDATE})


def plugin_static_routes(static: dict[str, Assets]) -> list[web.AbstractRouteDef]:
    return [web.get("/plugins/{plugin}/{path:.+}", plugin_file)] if static else []
