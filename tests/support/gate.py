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


class DatabaseGate:
    """A gate inside PostgreSQL: statements that take the shared advisory lock ``key`` wait until the test
    opens it, inside their own transaction (with every lock they already hold). The test holds the
    exclusive lock on a connection of its own; :meth:`wait_for_waiters` watches ``pg_locks`` for who is
    stuck, so "both transactions got this far" is seen, not guessed.

        gate = DatabaseGate(database_url)
        gate.hold_inserts_into("artifacts")     # a trigger: every INSERT INTO artifacts stops at the gate
        with gate:                              # closed while inside
            ...start the transactions...
            await gate.wait_for_waiters(lambda waits: len(waits) == 2)
        # open: they go on
    """

    KEY = 0x6761746500  # "gate"

    def __init__(self, database_url: str, key: int = KEY) -> None:
        self.database_url = database_url
        self.key = key
        self._holder = None

    def _run(self, query: str, params=()) -> list[tuple] | None:
        from tests.support.db import run_sql

        return run_sql(self.database_url, query, params)

    def hold_inserts_into(self, table: str) -> None:
        """Install a BEFORE INSERT trigger on ``table`` that waits at the gate (not bounded by lock_timeout)."""
        self._run(f"""
            CREATE OR REPLACE FUNCTION test_gate_wait() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM set_config('lock_timeout', '0', true);
                PERFORM pg_advisory_xact_lock_shared({self.key});
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_gate_wait BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION test_gate_wait();""")

    def sql(self) -> str:
        """A statement that waits at the gate, for a transaction to run where the test wants it held."""
        return (f"DO $$ BEGIN PERFORM set_config('lock_timeout', '0', true); "
                f"PERFORM pg_advisory_xact_lock_shared({self.key}); END $$")

    def close(self) -> None:
        import psycopg2

        self._holder = psycopg2.connect(self.database_url)
        self._holder.autocommit = True
        with self._holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (self.key,))

    def open(self) -> None:
        if self._holder is not None:
            self._holder.close()  # the session's advisory lock goes with it
            self._holder = None

    def __enter__(self) -> DatabaseGate:
        self.close()
        return self

    def __exit__(self, *exc_info) -> None:
        self.open()

    def waits(self) -> list[tuple[str, int | None, int | None]]:
        """What every backend of this database waits for right now: (locktype, classid, objid) per ungranted lock.
        An advisory lock on a bigint key k shows as classid = k >> 32, objid = k & 0xffffffff."""
        rows = self._run("""
            SELECT l.locktype, l.classid::bigint, l.objid::bigint FROM pg_locks l
            JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE NOT l.granted AND a.datname = current_database() AND l.pid <> pg_backend_pid()
            ORDER BY l.pid""")
        return [tuple(row) for row in rows]

    def waiting_at_gate(self) -> int:
        """How many transactions are stopped at this gate."""
        return self.waits().count(("advisory", self.key >> 32, self.key & 0xFFFFFFFF))

    async def wait_for_waiters(self, check: Callable[[list[tuple]], bool], timeout: float = 60.0) -> list[tuple]:
        """Poll until ``check(self.waits())`` holds; return the waits (AssertionError naming them after ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            waits = self.waits()
            if check(waits):
                return waits
            if loop.time() > deadline:
                raise AssertionError(f"the database never got to the expected waits; it waits on {waits}")
            await asyncio.sleep(0.02)
