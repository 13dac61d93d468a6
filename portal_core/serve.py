"""Serve the application until SIGTERM/SIGINT, then shut down gracefully.

aiohttp's own run_app stops reading from every connection as soon as it shuts down, so an upload whose
body is still arriving can never finish, however long the grace. Here the order is:

0. turn readiness off (/health/ready answers 503) and keep serving for ``delay`` seconds, so load
   balancers and Kubernetes' endpoints stop sending new requests here before anything is refused;
1. stop listening (new connections are refused, so the load balancer moves on);
2. let the requests in flight finish, reading their bodies to the end, for up to ``grace`` seconds
   (answers sent meanwhile say ``Connection: close``); a further signal ends a wait at once;
3. cancel whatever is still running, then run the app's cleanup: hooks, services' clients, the pool.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import attrs
from aiohttp import web

from . import keys
from .http_guard import GuardedAppRunner

log = logging.getLogger("portal")

# Time aiohttp itself may spend on handlers that outlived the grace before cancelling them.
CANCEL_SECONDS = 1.0


class InFlight:
    """Counts requests inside handlers; ``idle`` is set whenever none is."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        self.count += 1
        self.idle.clear()
        try:
            response = await handler(request)
            if self.draining and not response.prepared:
                response.force_close()
            return response
        finally:
            self.count -= 1
            if self.count == 0:
                self.idle.set()


async def _serve(app: web.Application, host: str, port: int, grace: float, delay: float, timeouts: Timeouts) -> None:
    in_flight = InFlight()
    app.middlewares.append(in_flight.middleware)
    runner = GuardedAppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=CANCEL_SECONDS,
                              header_timeout=timeouts.header, body_idle_timeout=timeouts.body_idle)
    loop = asyncio.get_running_loop()
    signals = asyncio.Queue()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals.put_nowait, sig)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:  # the port is taken, or the address is not this machine's
            raise CannotListen(f"cannot listen on {host}:{port}: {os.strerror(exc.errno) if exc.errno else exc}") from None
        log.info("listening on http://%s:%s", host, port)
        received = await signals.get()
        app[keys.LIFECYCLE].draining = True
        if delay > 0:
            log.info("%s: /health/ready now answers 503; serving on for %gs so load balancers move away",
                     signal.Signals(received).name, delay)
            try:
                await asyncio.wait_for(signals.get(), delay)  # a second signal skips the rest of the delay
            except asyncio.TimeoutError:
                pass
        await site.stop()
        in_flight.draining = True
        log.info("%s: no longer accepting connections; %d request(s) in flight get up to %gs to finish",
                 signal.Signals(received).name, in_flight.count, grace)
        idle = asyncio.ensure_future(in_flight.idle.wait())
        again = asyncio.ensure_future(signals.get())
        done, _pending = await asyncio.wait({idle, again}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        idle.cancel()
        again.cancel()
        if in_flight.count:
            why = "a second signal" if again in done else f"the {grace:g}s grace period is over"
            log.warning("%s: cancelling %d request(s) still in flight", why, in_flight.count)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    log.info("shutdown complete")


class CannotListen(Exception):
    """The listening socket could not be opened (startup ran and was torn down again)."""


@attrs.frozen
class Timeouts:
    """Seconds a connection gets to send a complete request head, and an upload body may send nothing
    (HTTP_HEADER_TIMEOUT_SECONDS, HTTP_BODY_IDLE_TIMEOUT_SECONDS; see http_guard.py)."""

    header: float
    body_idle: float


def serve(app: web.Application, *, host: str, port: int, grace: float, timeouts: Timeouts, delay: float = 0) -> None:
    """Run ``app`` on host:port until SIGTERM or SIGINT; then answer not-ready for ``delay`` seconds, stop
    listening, drain for up to ``grace`` seconds and clean up. Connections are held to ``timeouts``.

    Exceptions from startup (e.g. the database being unreachable) propagate to the caller after cleanup.
    """
    asyncio.run(_serve(app, host, port, grace, delay, timeouts))
