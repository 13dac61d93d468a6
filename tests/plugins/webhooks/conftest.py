"""A webhook receiver on 127.0.0.1 for the webhooks plugin's tests: it records every request and answers
with the statuses a test lines up (200 once they run out)."""

from __future__ import annotations

import asyncio

import attrs
import pytest
from aiohttp import web


@attrs.define
class Received:
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Records deliveries; ``answers`` are the statuses to give, in order (then 200); ``delay`` seconds to wait
    before answering; ``body_size`` bytes of answer body to stream (to show only the start is read)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []
        self.delay = 0.0
        self.body_size = 0
        self.finished_body = None  # whether the last long answer was written to the end
        self.arrived = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(Received(dict(request.headers), await request.read()))
        self.arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.answers.pop(0) if self.answers else 200
        if not self.body_size:
            return web.Response(status=status, text="thanks" if status < 300 else "try later")
        response = web.StreamResponse(status=status)
        await response.prepare(request)
        self.finished_body = False
        chunk = b"x" * 65536
        for _ in range(self.body_size // len(chunk)):
            await response.write(chunk)
        self.finished_body = True
        return response

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < count:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"the receiver got {len(self.received)} deliveries, expected {count}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return self.received


@pytest.fixture
async def receiver(aiohttp_server) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.url = str(server.make_url("/hooks"))
    return receiver
