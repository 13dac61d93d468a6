"""A third-party integrator's plugin, installed through the ``portal`` entry-point group (the dist-info folder
beside this package; put this folder on PYTHONPATH): it appends every event it receives to a file.

Its ``portal_event`` handler is a plain function, so the portal runs it in a worker thread; it reaches the
running application (config, pool, services) through ``app``. Settings:

* ``EVENT_PROBE_LOG``: the file to append one JSON line per delivered event to (nothing is written without it);
* ``EVENT_PROBE_HOLD``: an event type whose delivery waits at a gate: the handler creates
  ``<EVENT_PROBE_GATE>/reached-<event id>`` and then waits until ``<EVENT_PROBE_GATE>/open`` exists, so a
  test can act (kill the process, say) while a committed event is being delivered.

It also puts a "Probe log" link in the header (``portal_nav_items``) to its own server-rendered page.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import attrs
from aiohttp import web

from portal_core import hookimpl, keys
from portal_core.config import ConfigSection, setting

NAV_ITEM = {"label": "Probe log", "href": "/probe"}


@attrs.frozen
class ProbeSettings:
    log: str = setting("EVENT_PROBE_LOG", default="", hint="file the probe appends delivered events to")
    hold: str = setting("EVENT_PROBE_HOLD", default="", hint="an event type whose delivery waits at the gate")
    gate: str = setting("EVENT_PROBE_GATE", default="", hint="directory of the gate's files")


@hookimpl
def portal_config_sections():
    return [ConfigSection("event_probe", ProbeSettings, "the event probe test plugin")]


@hookimpl
def portal_event(event, app):
    settings = app[keys.CONFIG].sections["event_probe"]
    if settings.hold and event.type == settings.hold:
        gate = Path(settings.gate)
        (gate / f"reached-{event.id}").touch()
        while not (gate / "open").exists():
            time.sleep(0.02)
    if not settings.log:
        return
    line = json.dumps({"id": event.id, "type": event.type, "actor_id": event.actor_id, "owner_id": event.owner_id,
                       "subject_id": event.subject_id, "data": dict(event.data), "request_id": event.request_id,
                       "pid": os.getpid(), "on_main_thread": threading.current_thread() is threading.main_thread(),
                       "billing": app[keys.BILLING].name, "has_pool": app.get(keys.POOL) is not None})
    # One write of one short line in append mode: lines from several processes never interleave.
    fd = os.open(settings.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@hookimpl
def portal_nav_items(user, config):
    return [NAV_ITEM] if user else None


@hookimpl
def portal_routes(config):
    async def page(request):
        from portal_core.web.html import render_page
        from portal_core.web.sessions import authenticate

        principal = await authenticate(request, allow_token=False)
        return render_page(request, "Probe log", "<p>Events this portal delivered to the probe.</p>",
                           principal=principal)

    return [web.get("/probe", page)]
