"""Time limits aiohttp's server does not have: a request head must arrive in time, and an upload's body
must keep moving.

- **Header timeout** (``HTTP_HEADER_TIMEOUT_SECONDS``): a new connection, or one that has begun sending
  the next request, gets that long to deliver a complete request head; otherwise it is closed (with a
  ``408`` when part of a request arrived). aiohttp would keep it until its keep-alive timeout (an hour),
  so a few thousand silent sockets could hold a pod.
- **Body idle timeout** (``HTTP_BODY_IDLE_TIMEOUT_SECONDS``): while a handler waits for a request's body,
  a client that sends nothing for that long is cut off. The handler sees a lost connection, exactly as
  if the client had hung up, so an upload keeps nothing. A slow body that keeps moving is never cut, and
  time while the portal itself is not reading (its buffer full, flow control) does not count.

aiohttp builds its Server and RequestHandler itself and has no setting for the handler's class, so
:class:`GuardedAppRunner` gives the Server it built the subclass below; tests against a real ``portal
serve`` (tests/core/test_http_timeouts.py) hold both limits to it.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("portal.http")

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler with a header timeout and a body idle timeout (seconds; 0 turns one off)."""

    def __init__(self, manager, *, header_timeout: float, body_idle_timeout: float, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self.header_timeout = header_timeout
        self.body_idle_timeout = body_idle_timeout
        self.head_began: float | None = None  # when the request head now awaited began (None: none awaited)
        self.head_bytes = False  # whether any of it has arrived
        self.head_timer: asyncio.TimerHandle | None = None
        self.idle_timer: asyncio.TimerHandle | None = None
        self.last_read = 0.0

    # -- the header timeout ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.last_read = self._loop.time()
        self._await_head(data=False)

    def _await_head(self, *, data: bool) -> None:
        if self.head_began is None:
            self.head_began = self._loop.time()
        self.head_bytes = self.head_bytes or data
        if self.head_timer is None and self.header_timeout > 0:
            self.head_timer = self._loop.call_at(self.head_began + self.header_timeout, self._head_deadline)

    def _head_done(self) -> None:
        self.head_began, self.head_bytes = None, False
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_deadline(self) -> None:
        self.head_timer = None
        if self.head_began is None or self._request_in_progress or self.transport is None:
            return
        late = self._loop.time() - self.head_began
        if late < self.header_timeout:
            self.head_timer = self._loop.call_at(self.head_began + self.header_timeout, self._head_deadline)
            return
        if self.head_bytes:
            log.info("closed a connection from %s: no complete request head within %gs (HTTP_HEADER_TIMEOUT_SECONDS)",
                     self._peer(), self.header_timeout)
            self.transport.write(TIMED_OUT)
        self.force_close()

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._head_done()
            self._watch_body()
        elif self._request_in_progress or self._messages:
            self.head_began = None  # body bytes of the request in hand, not a new head
        elif data:
            self._await_head(data=True)

    # -- the body idle timeout ---------------------------------------------------------------------

    def resume_reading(self, resume_parser: bool = True) -> None:
        # While reading was paused the client could not send: that time is not the client's idleness.
        self.last_read = self._loop.time()
        super().resume_reading(resume_parser)

    def _watch_body(self) -> None:
        if self.body_idle_timeout > 0 and self.idle_timer is None and self._messages:
            payload = self._messages[-1][1]
            if not payload.is_eof():
                self.idle_timer = self._loop.call_at(self.last_read + self.body_idle_timeout, self._body_deadline)

    def _body_deadline(self) -> None:
        self.idle_timer = None
        if self.transport is None or self._force_close:
            return
        request = self._current_request
        if request is None:
            if self._messages:  # the request is queued, its handler not started yet: keep watching
                self.idle_timer = self._loop.call_later(self.body_idle_timeout, self._body_deadline)
            return
        if request.content.is_eof():
            return
        now = self._loop.time()
        if self._reading_paused or now - self.last_read < self.body_idle_timeout:
            start = now if self._reading_paused else self.last_read
            self.idle_timer = self._loop.call_at(start + self.body_idle_timeout, self._body_deadline)
            return
        log.info("cut off %s %s from %s: its body sent nothing for %gs (HTTP_BODY_IDLE_TIMEOUT_SECONDS)",
                 request.method, request.rel_url.path, self._peer(), self.body_idle_timeout)
        self.force_close()  # the handler's next read fails as if the client had hung up

    def connection_lost(self, exc: BaseException | None) -> None:
        for timer in (self.head_timer, self.idle_timer):
            if timer is not None:
                timer.cancel()
        self.head_timer = self.idle_timer = None
        super().connection_lost(exc)

    def _peer(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peer[0]) if peer else "a client"


class GuardedServer(web.Server):
    """aiohttp's Server, making :class:`GuardedRequestHandler` connections."""

    header_timeout: float = 0.0
    body_idle_timeout: float = 0.0

    def __call__(self) -> GuardedRequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, header_timeout=self.header_timeout,
                                     body_idle_timeout=self.body_idle_timeout, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """web.AppRunner whose connections have the header and body idle timeouts."""

    def __init__(self, app: web.Application, *, header_timeout: float, body_idle_timeout: float, **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.header_timeout = header_timeout
        self.body_idle_timeout = body_idle_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The Server aiohttp built, as the subclass: same state, only its connections' class differs.
        server.__class__ = GuardedServer
        server.header_timeout = self.header_timeout
        server.body_idle_timeout = self.body_idle_timeout
        return server
