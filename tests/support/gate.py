"""A gate in front of an S3 server: a loopback HTTP proxy that forwards everything, except the requests a
test chooses to hold until it says so. It makes "killed in the middle of an upload" deterministic: the
parts before the gate are stored, the ones after it are in flight, and nothing races.

    async with S3Gate(moto_endpoint) as gate:          # point R2_ENDPOINT_URL at gate.url
        gate.hold(lambda r: r.method == "PUT" and part_number(r) >= 3)
        await gate.wait_for(lambda: len(gate.holding()) == 2)   # two parts are stuck at the gate
        ...                                             # kill the client
        gate.drop_held()                                # they never reach S3
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


def part_number(request: web.Request) -> int:
    """The partNumber of an UploadPart request (0 for anything else)."""
    raw = request.query.get("partNumber", "")
    return int(raw) if raw.isdigit() else 0


@attrs.define
class Seen:
    method: str
    path: str
    part: int
    status: int | None = None  # None while held or in flight
    held: bool = False


class S3Gate:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.seen: list[Seen] = []
        self._hold: Callable[[web.Request], bool] = lambda _r: False
        self._refuse: Callable[[web.Request], bool] = lambda _r: False
        self._release = asyncio.Event()
        self._drop = False
        self._changed = asyncio.Event()
        self._server: TestServer | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    async def __aenter__(self) -> S3Gate:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.drop_held()
        await self._server.close()
        await self._session.close()

    def hold(self, predicate: Callable[[web.Request], bool]) -> None:
        self._hold = predicate
        self._release.clear()
        self._drop = False

    def refuse(self, predicate: Callable[[web.Request], bool]) -> None:
        """Answer matching requests at once with 503 (storage failing), without forwarding them."""
        self._refuse = predicate

    def open(self) -> None:
        """Let held requests through, and hold or refuse nothing more."""
        self._hold = self._refuse = lambda _r: False
        self._release.set()

    def drop_held(self) -> None:
        """Answer held requests with 503 without forwarding them (their client is gone anyway)."""
        self._drop = True
        self._hold = lambda _r: False
        self._release.set()

    def holding(self) -> list[int]:
        """Part numbers held at the gate right now."""
        return sorted(s.part for s in self.seen if s.held and s.status is None)

    async def wait_for(self, check: Callable[[], bool], timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self._changed.clear()
                await self._changed.wait()

    def parts(self, status: int = 200) -> list[int]:
        """Part numbers S3 answered with ``status`` (503: dropped at the gate)."""
        return sorted(s.part for s in self.seen if s.part and s.method == "PUT" and s.status == status)

    def _note(self) -> None:
        self._changed.set()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path, part_number(request))
        self.seen.append(seen)
        body = await request.read()
        if self._refuse(request):
            seen.status = 503
            self._note()
            return web.Response(status=503, text="<Error><Code>ServiceUnavailable</Code></Error>")
        if self._hold(request):
            seen.held = True
            self._note()
            await self._release.wait()
            if self._drop:
                seen.status = 503
                self._note()
                return web.Response(status=503, text="dropped at the gate")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                         data=body, allow_redirects=False) as answer:
            payload = await answer.read()
            seen.status = answer.status
            self._note()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=answer.status, body=payload, headers=out)
