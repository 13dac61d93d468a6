"""Connections cannot hold a pod: a request head must arrive within HTTP_HEADER_TIMEOUT_SECONDS, and an
upload's body may send nothing for at most HTTP_BODY_IDLE_TIMEOUT_SECONDS (portal_core/http_guard.py).

Raw sockets against a real `portal serve` with small limits. The sockets' own timeouts (30 s) only stop a
test that would otherwise hang: they are far above the limits under test, and what is asserted is what
the client sees (a 408, a closed connection, a stored or absent file), never how fast.
"""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import pytest

from portal_core.testing.client import browser_multipart
from tests.support.db import create_token, create_user, run_sql
from tests.support.live import received_until_closed
from tests.support.portal import run_portal

HEADER_TIMEOUT = 1.0
BODY_IDLE_TIMEOUT = 2.0
HANG = 30.0  # far beyond both limits: reaching it means the portal never closed the connection


@pytest.fixture(scope="module")
def timeouts_db(postgres_admin_url):
    import asyncio

    from portal_core.testing.portal import create_database, drop_database, provision

    url = create_database(postgres_admin_url)
    asyncio.run(provision(url))
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def portal(timeouts_db):
    env = {"HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT), "HTTP_BODY_IDLE_TIMEOUT_SECONDS": str(BODY_IDLE_TIMEOUT)}
    with run_portal(timeouts_db, env) as process:
        yield process


@pytest.fixture(scope="module")
def token(timeouts_db) -> str:
    return create_token(timeouts_db, create_user(timeouts_db, email="slow@example.com"))


def connect(portal) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", portal.port), timeout=HANG)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the portal sends until it closes the connection (fails if it never does)."""
    try:
        return received_until_closed(sock)
    except TimeoutError:
        raise AssertionError(f"the portal kept the connection open for {HANG:g}s") from None


def stored_files(portal) -> list[Path]:
    return [p for p in Path(portal.data_dir).rglob("*") if p.is_file() and p.name != "portal.log"
            and "postgres" not in p.parts]


@pytest.mark.parametrize("sent", [b"GET /health HT", b"GET /health HTTP/1.1\r\nHost: portal\r\nX-Slow: 1",
                                  b"POST /api/artifacts HTTP/1.1\r\nHost: portal\r\n"])
def test_a_request_head_that_never_finishes_is_answered_408_and_closed(portal, sent) -> None:
    with connect(portal) as sock:
        sock.sendall(sent)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert "no complete request head within 1s (HTTP_HEADER_TIMEOUT_SECONDS)" in portal.log()


def test_a_head_that_trickles_in_is_held_to_the_same_deadline(portal) -> None:
    """The limit is on the whole head, not on the pauses within it: a client sending one header line at a
    time, each well within the limit, is still closed (the slowloris attack)."""
    with connect(portal) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: portal\r\n")
        for i in range(int(HANG / (HEADER_TIMEOUT / 4))):
            # Stop sending once the portal has answered (sending more would make it reset the connection).
            if select.select([sock], [], [], HEADER_TIMEOUT / 4)[0]:
                break
            sock.sendall(f"X-Slow-{i}: 1\r\n".encode())
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer


def test_a_connection_that_sends_nothing_is_closed(portal) -> None:
    with connect(portal) as sock:
        assert read_until_closed(sock) == b""


def test_a_kept_alive_connection_still_serves_after_idling_past_the_header_timeout(portal) -> None:
    """Between requests a connection is idle, not slow: proxies reuse such connections, so only a head
    that has begun is held to the limit."""
    request = b"GET /health/live HTTP/1.1\r\nHost: portal\r\n\r\n"
    with connect(portal) as sock:
        sock.sendall(request)
        first = sock.recv(65536)
        time.sleep(HEADER_TIMEOUT * 2)
        sock.sendall(request)
        second = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ") and second.startswith(b"HTTP/1.1 200 "), (first, second)


def upload_head(token: str, body_length: int, content_type: str) -> bytes:
    return (f"POST /api/artifacts HTTP/1.1\r\nHost: portal\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {body_length}\r\nConnection: close\r\n\r\n").encode()


def test_a_slow_upload_that_keeps_moving_is_never_cut(portal, token, timeouts_db) -> None:
    data = bytes(range(256)) * 64  # 16 KiB, sent in 16 pieces, a pause under the idle limit between each
    body, content_type = browser_multipart(data, "slow.bin", "application/octet-stream")
    pieces = [body[i:i + 1024] for i in range(0, len(body), 1024)]
    gap = BODY_IDLE_TIMEOUT / 5
    assert gap * len(pieces) > BODY_IDLE_TIMEOUT * 3  # the whole upload takes far longer than the idle limit
    with connect(portal) as sock:
        sock.sendall(upload_head(token, len(body), content_type))
        for piece in pieces:
            time.sleep(gap)
            sock.sendall(piece)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:500]
    assert run_sql(timeouts_db, "SELECT name, size FROM artifacts WHERE name = 'slow.bin'") == [("slow.bin", len(data))]
    assert any(path.read_bytes() == data for path in stored_files(portal)), "the stored object is where the tests look"


def test_an_upload_whose_body_goes_quiet_is_cut_and_nothing_is_kept(portal, token, timeouts_db) -> None:
    data = b"x" * 100_000
    body, content_type = browser_multipart(data, "stalled.bin", "application/octet-stream")
    before = stored_files(portal)
    with connect(portal) as sock:
        sock.sendall(upload_head(token, len(body), content_type))
        sock.sendall(body[:60_000])  # then nothing: the client stalls mid-file
        answer = read_until_closed(sock)
    assert not answer.startswith(b"HTTP/1.1 201"), answer[:300]
    log = portal.log()
    assert "its body sent nothing for 2s (HTTP_BODY_IDLE_TIMEOUT_SECONDS)" in log
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    assert run_sql(timeouts_db, "SELECT count(*) FROM artifacts WHERE name = 'stalled.bin'") == [(0,)]
    assert stored_files(portal) == before, "the stalled upload left a file behind"
    # The portal is fine: the next request on a new connection is answered at once.
    with connect(portal) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: portal\r\nConnection: close\r\n\r\n")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 200 ")
