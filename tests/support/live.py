"""A real portal served from a thread of the test process, for tests that drive it with blocking clients
(Schemathesis, raw sockets): ``with live_portal(database_url, data_dir) as portal: portal.raw(b"GET / ...")``.

It is the application ``create_app`` builds (the test kit's :func:`make_portal_app`), on a loopback port of
its own event loop. Everything the portal logs is kept (``portal.records``), so a test can assert that no
request logged an ERROR or a traceback; :func:`storage_agrees` checks rows against stored objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import aiohttp
import attrs
from aiohttp import web

from portal_core.testing import make_portal_app
from portal_core.testing.client import dev_sign_in

from portal_core.web.sessions import DEFAULT_SCOPES, SCOPES

from .db import run_sql


def received_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes the connection (a reset counts as closing); the socket's
    timeout (TimeoutError) if it never does."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@attrs.define
class Credentials:
    """One signed-in customer: the session cookie with its CSRF token, and an API token."""

    cookie: str
    csrf: str
    token: str


@attrs.define
class LivePortal:
    url: str
    port: int
    data_dir: Path
    database_url: str
    loop: asyncio.AbstractEventLoop
    handler: _Keep
    app: web.Application
    customer: Credentials | None = None  # whoever the test signed in and wants to keep at hand

    @property
    def records(self) -> list[logging.LogRecord]:
        return self.handler.records

    def alarming(self, since: int = 0) -> list[str]:
        """What the portal logged (from record ``since`` on) at ERROR, or with a traceback at INFO or above,
        one line each: a hostile request may log a WARNING, nothing worse. (aiohttp logs a request line with
        an unknown method at DEBUG with its traceback, below any level a portal logs at.)"""
        return [f"{r.levelname} {r.name}: {r.getMessage()}" + (" (with a traceback)" if r.exc_info else "")
                for r in self.records[since:]
                if r.levelno >= logging.ERROR or (r.exc_info and r.levelno >= logging.INFO)]

    def raw(self, request: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
        """Send ``request`` as it is on a new connection, read until the portal closes it; (status, body).

        Send ``Connection: close`` (or a request the portal cannot parse), so the portal closes the
        connection after its answer. Status 0 when it closed the connection without answering.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the portal answered (and closed) before reading everything: read its answer
            answer = received_until_closed(sock)
        if not answer.startswith(b"HTTP/1."):
            return 0, answer
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    def sign_in(self, email: str, *, admin: bool = False) -> Credentials:
        """Sign ``email`` in through the dev sign-in form and create an API token for them."""

        async def run() -> Credentials:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                csrf = await dev_sign_in(session, self.url, email=email, admin=admin)
                cookie = next(c.value for c in session.cookie_jar if c.key == "portal_session")
                async with session.post(f"{self.url}/api/tokens", json={"name": "fuzz", "scopes": list(SCOPES if admin else DEFAULT_SCOPES)},
                                        headers={"X-CSRF-Token": csrf}) as resp:
                    assert resp.status == 201, await resp.text()
                    token = (await resp.json())["token"]
            return Credentials(cookie, csrf, token)

        return asyncio.run(run())


def storage_agrees(portal: LivePortal) -> list[str]:
    """Where the database and the dev storage disagree: an artifact row without its object (or with an
    object of another size), an object without a row, or a partial file left behind. Empty when they agree."""
    rows = {key: size for key, size in run_sql(portal.database_url, "SELECT storage_key, size FROM artifacts")}
    pending = {upload for (upload,) in run_sql(portal.database_url, "SELECT upload_id FROM direct_uploads")}
    root = portal.data_dir / "artifacts"
    found = {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()} if root.exists() else {}
    problems = [f"row {key} has no object" for key in rows if key not in found]
    problems += [f"row {key} says {size} bytes, the object holds {found[key]}"
                 for key, size in rows.items() if key in found and found[key] != size]
    problems += [f"object {key} has no row" for key in found if key not in rows and not _part_of(key, pending)]
    return problems


def bucket_agrees(portal: LivePortal, endpoint: str, bucket: str) -> list[str]:
    """:func:`storage_agrees` for the r2 storage on the loopback S3 server: every row's object is in
    ``bucket`` with the row's size, every object has a row, and no multipart upload is left open but those
    of pending direct uploads."""
    from tests.support.moto import s3_client

    async def look() -> tuple[dict[str, int], list[str]]:
        async with s3_client(endpoint) as client:
            listed = await client.list_objects_v2(Bucket=bucket)
            uploads = await client.list_multipart_uploads(Bucket=bucket)
        return ({item["Key"]: item["Size"] for item in listed.get("Contents", [])},
                [item["UploadId"] for item in uploads.get("Uploads", [])])

    found, open_uploads = asyncio.run(look())
    rows = {key: size for key, size in run_sql(portal.database_url, "SELECT storage_key, size FROM artifacts")}
    pending = {upload for (upload,) in run_sql(portal.database_url, "SELECT upload_id FROM direct_uploads")}
    problems = [f"row {key} has no object" for key in rows if key not in found]
    problems += [f"row {key} says {size} bytes, the object holds {found[key]}"
                 for key, size in rows.items() if key in found and found[key] != size]
    problems += [f"object {key} has no row" for key in found if key not in rows]
    problems += [f"multipart upload {upload} was left open" for upload in open_uploads if upload not in pending]
    return problems


def _part_of(key: str, pending: set[str]) -> bool:
    # The dev storage keeps a pending direct upload's parts under .uploads/<upload id>/ until it completes.
    folder, _, upload = key.partition("/")
    return folder == ".uploads" and upload.split("/", 1)[0] in pending


@contextlib.contextmanager
def live_portal(database_url: str, data_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[LivePortal]:
    """A portal on a free loopback port, served by its own thread until the block ends."""
    handler = _Keep()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    ready = threading.Event()
    stop: dict = {}
    failure: list[BaseException] = []

    async def serve() -> None:
        app = make_portal_app(database_url, data_dir, env)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            stop["port"] = site._server.sockets[0].getsockname()[1]
            stop["event"] = asyncio.Event()
            stop["loop"] = asyncio.get_running_loop()
            stop["app"] = app
            ready.set()
            await stop["event"].wait()
        finally:
            await runner.cleanup()

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, name="live-portal", daemon=True)
    thread.start()
    ready.wait(60)
    try:
        if failure or "port" not in stop:
            raise AssertionError(f"the portal did not start: {failure[0] if failure else 'no answer in 60 s'}")
        port = stop["port"]
        yield LivePortal(f"http://127.0.0.1:{port}", port, data_dir, database_url, stop["loop"], handler, stop["app"])
    finally:
        if "loop" in stop:
            stop["loop"].call_soon_threadsafe(stop["event"].set)
        thread.join(30)
        root.removeHandler(handler)
        root.setLevel(previous)
