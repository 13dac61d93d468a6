"""Hostile input is a 4xx with the usual error, logged as a warning without a traceback, and leaves nothing
behind — one named case for each class the fuzzer (tests/generated) or the probe found (issue 17).

Raw bytes over a socket to a live portal, because no HTTP client sends non-UTF-8 header values or cut-off
multipart bodies on purpose.
"""

from __future__ import annotations

import asyncio

import aiohttp
import base64
import json
import logging
import socket
import time
import uuid

import pytest

from portal_core import keys
from portal_core.testing.portal import create_database, drop_database, provision
from portal_core.web.inputs import same_secret
from tests.support.db import run_sql
from tests.support.live import live_portal, storage_agrees
from tests.support.sharing import make_pro

BOUNDARY = "HostileBoundary9"
FILE_HEAD = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode()
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}".encode()


@pytest.fixture(scope="module")
def live(portal_db_server, tmp_path_factory):
    database_url = create_database(portal_db_server)
    try:
        asyncio.run(provision(database_url))
        with live_portal(database_url, tmp_path_factory.mktemp("hostile-data")) as portal:
            portal.customer = portal.sign_in("ada@example.com")
            yield portal
    finally:
        drop_database(database_url)


@pytest.fixture
def portal(live):
    """The live portal; each test starts with no artifacts and checks nothing alarming was logged."""
    run_sql(live.database_url, "DELETE FROM artifacts")
    for path in (live.data_dir / "artifacts").rglob("*"):
        if path.is_file():
            path.unlink()
    before = len(live.records)
    yield live
    assert live.alarming(before) == [], "logged at ERROR or with a traceback"


def request(method: str, target: str | bytes, headers=(), body: bytes = b"", content_type: bytes | None = None) -> bytes:
    target = target.encode() if isinstance(target, str) else target
    lines = [(b"Host", b"127.0.0.1"), (b"Connection", b"close"), *headers]
    if content_type is not None:
        lines.append((b"Content-Type", content_type))
    lines.append((b"Content-Length", str(len(body)).encode()))
    return method.encode() + b" " + target + b" HTTP/1.1\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in lines) + b"\r\n" + body


def bearer(portal) -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", b"Bearer " + portal.customer.token.encode())]


def session(portal, csrf: bytes | None = None) -> list[tuple[bytes, bytes]]:
    return [(b"Cookie", b"portal_session=" + portal.customer.cookie.encode()),
            (b"X-CSRF-Token", portal.customer.csrf.encode() if csrf is None else csrf)]


def error_code(body: bytes) -> str:
    return json.loads(body)["error"]["code"]


def warned(portal, before: int) -> list[str]:
    return [r.getMessage() for r in portal.records[before:] if r.levelno == logging.WARNING and not r.exc_info]


# ---- credentials: raw non-UTF-8 bytes in the cookie, the bearer token, the CSRF header and field -------


@pytest.mark.parametrize("path, expected", [("/api/me", 401), ("/api/artifacts", 401), ("/", 200)])
def test_a_garbage_cookie_without_a_session_is_simply_not_signed_in(portal, path, expected):
    status, body = portal.raw(request("GET", path, [(b"Cookie", b"portal_session=\xff\xfe\x80")]))
    assert status == expected
    if expected == 401:
        assert error_code(body) == "unauthenticated"


def test_a_bearer_token_of_raw_bytes_is_unauthenticated(portal):
    status, body = portal.raw(request("GET", "/api/me", [(b"Authorization", b"Bearer pt_\xff\xfe")]))
    assert (status, error_code(body)) == (401, "unauthenticated")


def test_a_csrf_header_of_raw_bytes_is_the_wrong_csrf_token(portal):
    status, body = portal.raw(request("POST", "/api/tokens", session(portal, b"\xff\xfe\xc3"), b'{"name": "x"}',
                                      b"application/json"))
    assert (status, error_code(body)) == (403, "csrf")


def test_a_csrf_form_field_that_is_not_utf8_is_a_400_naming_the_form(portal):
    cookie = session(portal)[:1]
    status, body = portal.raw(request("POST", "/auth/logout", cookie, b"csrf_token=\xff\xfe",
                                      b"application/x-www-form-urlencoded"))
    # /auth/logout is a browser's form, so the refusal is a page in the layout saying why (the API gets JSON).
    assert status == 400 and b'data-testid="error-message">The form could not be read' in body, body[-600:]
    status, body = portal.raw(request("POST", "/auth/logout", cookie, b"csrf_token=%ff%fe",
                                      b"application/x-www-form-urlencoded"))
    assert status == 403 and b"CSRF token" in body  # decodes (to U+FFFD): simply the wrong token
    status, _ = portal.raw(request("GET", "/api/me", bearer(portal)))
    assert status == 200


def test_secrets_compare_whatever_text_is_presented():
    assert same_secret("abc", "abc") and not same_secret("\udcff\u00e9", "abc") and not same_secret("", "abc")


# ---- JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, code, words", [
    (b'{"name": "a\\u0000b"}', "bad_text", "NUL"),
    (b'{"name": "a\\ud800b"}', "bad_text", "lone surrogate"),
    (b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "bad_json", "JSON object"),
    (b'{"name": ' + b"[" * 40 + b"]" * 40 + b"}", "bad_json", "nested more than"),
    (b"\xff\xfe{}", "bad_json", "JSON object"),
])
def test_json_that_postgresql_cannot_hold_or_python_cannot_parse_is_a_400(portal, raw, code, words):
    before = len(portal.records)
    status, body = portal.raw(request("POST", "/api/tokens", session(portal), raw, b"application/json"))
    assert (status, error_code(body)) == (400, code)
    assert words in json.loads(body)["error"]["message"]
    assert any(code in line for line in warned(portal, before))


# ---- query strings, path segments, cursors ---------------------------------------------------------


@pytest.mark.parametrize("target, code", [
    ("/api/artifacts?q=a%00b", "bad_query"),
    ("/api/s3/multipart/abc?key=%00", "bad_query"),
    (f"/api/artifacts/{uuid.uuid4()}%00", "bad_path"),
    ("/api/artifacts?limit=%C2%B2", "bad_limit"),  # '²' is a digit to str.isdigit(), not to int()
])
def test_nul_and_odd_digits_in_the_url_are_a_400_naming_the_parameter(portal, target, code):
    status, body = portal.raw(request("GET", target, bearer(portal)))
    assert (status, error_code(body)) == (400, code)


def cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_a_cursor_with_an_unusual_but_valid_offset_pages_on(portal):
    when = "2020-01-01T00:00:00+23:59:59.999999"
    status, body = portal.raw(request("GET", f"/api/artifacts?cursor={cursor(f'{when}|{uuid.uuid4()}')}", bearer(portal)))
    assert status == 200 and json.loads(body)["artifacts"] == []


@pytest.mark.parametrize("raw, sort", [
    (f"0001-01-01T00:00:00+05:00|{uuid.uuid4()}", ""),  # before year 1 in UTC
    (f"2020-01-01T00:00:00|{uuid.uuid4()}", ""),  # no offset
    (f"size.desc:{'9' * 25}|{uuid.uuid4()}", "&sort=size"),
    (f"name.asc:a\x00|{uuid.uuid4()}", "&sort=name"),
])
def test_a_cursor_the_api_never_handed_out_is_a_400(portal, raw, sort):
    status, body = portal.raw(request("GET", f"/api/artifacts?cursor={cursor(raw)}{sort}", bearer(portal)))
    assert (status, error_code(body)) == (400, "bad_cursor")


# ---- multipart: malformed and cut-off bodies are refused and leave nothing --------------------------


def rows(portal) -> int:
    return run_sql(portal.database_url, "SELECT count(*) FROM artifacts")[0][0]


@pytest.mark.parametrize("body, content_type", [
    pytest.param(b"", MULTIPART, id="empty"),
    pytest.param(b"abc", b"multipart/form-data", id="no boundary"),
    pytest.param(b"--" + b"a" * 100 + b"--\r\n", b"multipart/form-data; boundary=" + b"a" * 100, id="boundary too long"),
    pytest.param(b"\xff\xfe garbage\r\n\r\n", MULTIPART, id="garbage"),
    pytest.param(f"--{BOUNDARY}\r\nX-A: {'a' * 20000}\r\n\r\nabc\r\n--{BOUNDARY}--\r\n".encode(), MULTIPART,
                 id="over-long part header"),
    pytest.param(f"--{BOUNDARY}\r\n".encode() + b"\xff\xfe\x00garbage\r\n\r\nabc\r\n" + f"--{BOUNDARY}--\r\n".encode(),
                 MULTIPART, id="garbage part header"),
    pytest.param(FILE_HEAD + b"hello world", MULTIPART, id="cut off inside the file"),
    pytest.param(FILE_HEAD + b"x" * 2_000_000, MULTIPART, id="cut off inside a large file"),
    pytest.param(FILE_HEAD + b"hello\r\n--" + BOUNDARY[:4].encode(), MULTIPART, id="cut off inside the boundary"),
    pytest.param(FILE_HEAD + f"hello world\r\n--{BOUNDARY}\r\n".encode(), MULTIPART,
                 id="cut off before the closing boundary"),
])
def test_a_malformed_or_cut_off_upload_is_a_400_and_nothing_is_kept(portal, body, content_type):
    before = len(portal.records)
    status, answer = portal.raw(request("POST", "/api/artifacts", bearer(portal), body, content_type))
    assert (status, error_code(answer)) == (400, "bad_multipart"), answer
    assert rows(portal) == 0 and storage_agrees(portal) == []
    assert any("bad_multipart" in line for line in warned(portal, before))


def test_a_whole_upload_without_the_optional_final_crlf_is_stored_whole(portal):
    body = FILE_HEAD + f"hello world\r\n--{BOUNDARY}--".encode()
    status, answer = portal.raw(request("POST", "/api/artifacts", bearer(portal), body, MULTIPART))
    assert status == 201 and json.loads(answer)["size"] == 11
    assert storage_agrees(portal) == []


def test_a_filename_that_looks_like_a_token_is_stored_and_redacted_in_the_event(portal):
    """Found by the fuzzer: the events' guard against secrets refused the upload's event, a 500."""
    name = "pt_" + "A" * 43
    head = FILE_HEAD.replace(b'filename="cut.bin"', f'filename="{name}"'.encode())
    status, answer = portal.raw(request("POST", "/api/artifacts", bearer(portal), head + f"secret?\r\n--{BOUNDARY}--\r\n".encode(),
                                        MULTIPART))
    assert status == 201 and json.loads(answer)["name"] == name
    (data,) = run_sql(portal.database_url, "SELECT data FROM events WHERE type = 'artifact.created' "
                                           "AND subject_id = %s", (json.loads(answer)["id"],))[0]
    assert data["name"] == "[redacted: looks like a secret]" and data["size"] == 7


def test_a_file_request_keeps_the_files_that_arrived_whole_and_refuses_the_cut_one(portal):
    (user_id,) = run_sql(portal.database_url, "SELECT id FROM users WHERE email = 'ada@example.com'")[0]
    make_pro(lambda q, p=(): run_sql(portal.database_url, q, p), user_id)
    status, answer = portal.raw(request("POST", "/api/requests", bearer(portal), b'{"title": "logs"}', b"application/json"))
    assert status == 201, answer
    token = json.loads(answer)["url"].rsplit("/", 1)[1]
    second = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="two.bin"\r\n\r\n').encode()
    body = FILE_HEAD + b"first file\r\n" + second + b"second, cut o"
    status, page = portal.raw(request("POST", f"/r/{token}", [], body, MULTIPART))
    assert status == 400
    assert b"Sent 1 file" in page and b"malformed or was cut off" in page
    assert run_sql(portal.database_url, "SELECT name, size FROM artifacts") == [("cut.bin", 10)]
    assert storage_agrees(portal) == []


# ---- the OIDC state, aiohttp's own refusals, and clients that go away ---------------------------------


@pytest.mark.parametrize("target", ["/auth/callback?state=%C3%A9%E2%82%AC&code=x", "/auth/callback?state=%ff%fe&code=x"])
def test_a_non_ascii_oauth_state_is_a_failed_sign_in_not_a_500(portal, target):
    async def attempt() -> tuple[int, str]:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.get(f"{portal.url}/auth/login", allow_redirects=False) as resp:
                assert resp.status == 302  # a sign-in in progress: its state is in this browser's session
            async with browser.get(portal.url + target, allow_redirects=False) as resp:
                return resp.status, await resp.text()

    status, page = asyncio.run(attempt())
    assert status == 400 and 'data-testid="sign-in-error"' in page


def test_a_request_line_aiohttp_refuses_is_a_warning_without_a_traceback(portal):
    before = len(portal.records)
    status, _ = portal.raw(b"GET /auth/callback?state=\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 400
    assert any("refused malformed input" in line for line in warned(portal, before))


def test_a_client_that_goes_away_mid_upload_is_no_500_and_leaves_nothing(portal):
    metrics = portal.app[keys.METRICS].registry

    def count(status: str) -> float:
        return metrics.get_sample_value("portal_http_requests_total",
                                        {"route": "/api/artifacts", "method": "POST", "status": status}) or 0

    closed_before = count("499")
    head = request("POST", "/api/artifacts", bearer(portal), b"", MULTIPART).replace(b"Content-Length: 0",
                                                                                      b"Content-Length: 10000000")
    with socket.create_connection(("127.0.0.1", portal.port)) as sock:
        sock.sendall(head + FILE_HEAD + b"x" * 300_000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    deadline = time.monotonic() + 30
    while count("499") == closed_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count("499") == closed_before + 1 and count("500") == 0
    assert rows(portal) == 0 and storage_agrees(portal) == []


def test_a_client_that_goes_away_mid_download_is_no_500(portal):
    status, answer = portal.raw(request("POST", "/api/artifacts", bearer(portal),
                                        FILE_HEAD + b"y" * 8_000_000 + f"\r\n--{BOUNDARY}--\r\n".encode(), MULTIPART))
    assert status == 201, answer
    artifact = json.loads(answer)["id"]
    metrics = portal.app[keys.METRICS].registry
    route = {"route": "/api/artifacts/{id}/download", "method": "GET"}

    def count(status: str) -> float:
        return metrics.get_sample_value("portal_http_requests_total", {**route, "status": status}) or 0

    with socket.create_connection(("127.0.0.1", portal.port)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(request("GET", f"/api/artifacts/{artifact}/download", bearer(portal)))
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    deadline = time.monotonic() + 30
    while count("200") + count("499") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Whether the portal had written everything before the reset (200) or not (499), it is no 5xx.
    assert count("200") + count("499") == 1 and count("500") == 0

