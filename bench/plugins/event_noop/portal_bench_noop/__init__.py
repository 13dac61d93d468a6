"""A no-op ``portal_event`` consumer for bench/events.py, installed through the ``portal`` entry-point group
(put this folder on PYTHONPATH). It notes when each event arrived (``time.time()``, nothing else), and
``GET /bench/received`` hands those times over (and forgets them) so the benchmark can compute
commit-to-delivery latency.
"""

from __future__ import annotations

import time

from aiohttp import web

from portal_core import hookimpl

# Event id -> arrival time. Module state is fine here: one benchmark portal per process.
_ARRIVED: dict[int, float] = {}


@hookimpl
async def portal_event(event, app):
    _ARRIVED[event.id] = time.time()


@hookimpl
def portal_routes(config):
    async def received(request):
        arrived = dict(_ARRIVED)
        _ARRIVED.clear()
        return web.json_response({str(k): v for k, v in arrived.items()})

    return [web.get("/bench/received", received)]
