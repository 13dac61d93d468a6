"""Where the portal sends a browser back to (``next``), and what a GET of /auth/login may do.

One rule (portal_core/web/next_path.py) judges every return address, as browsers read URLs: they drop
tabs, CRs and LFs anywhere and take a backslash for a slash, so "/\\t/evil.example" is followed as
"//evil.example", another site. The sign-in page's links are rendered by the server with that rule,
and a GET of /auth/login never ends a session (any site can make a browser GET it).
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pytest

from portal_core.web.next_path import safe_next

BASE = "https://portal.example.com"

# (value, what a browser must end up at). Every hostile one becomes "/".
HOSTILE = [
    "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example", " //evil.example",
    "/%09/evil", "/%0a/evil", "/%2F/evil.example", "/%5Cevil.example", "%2F%2Fevil.example",
    "\\\\evil", "\\/evil.example", "/\\evil", "/\\/evil.example", "/a\\b", "//evil.example", "///evil.example",
    "https:evil", "https://evil.example/", "http:/evil.example", "javascript:alert(1)", "data:text/html,x",
    "evil.example", "./x", "/x\x00", "/x\x7f", "/x\u0085", "/\u0000/evil", "",
]
LOCAL = [("/account", "/account"), ("/billing?x=1&y=%2F", "/billing?x=1&y=%2F"), ("/s/abc#top", "/s/abc#top"),
         ("/a b", "/a%20b"), ("/fichier-é", "/fichier-%C3%A9"), ("/", "/")]


def lands_on_this_site(href: str) -> bool:
    """Whether a browser following ``href`` from a page of BASE stays on BASE, reading it as browsers do
    (tabs/CR/LF removed, leading/trailing spaces and controls stripped, backslashes as slashes)."""
    cleaned = re.sub(r"[\t\r\n]", "", href).strip("\x00- ").replace("\\", "/")
    target = urlsplit(urljoin(BASE + "/page", cleaned))
    return (target.scheme, target.netloc) == ("https", "portal.example.com")


@pytest.mark.parametrize("value", HOSTILE)
def test_the_rule_refuses_every_hostile_value(value) -> None:
    assert safe_next(value) == "/"


@pytest.mark.parametrize("value, expected", LOCAL)
def test_the_rule_keeps_paths_on_this_site(value, expected) -> None:
    assert safe_next(value) == expected and lands_on_this_site(expected)


def test_what_the_rule_lets_through_is_always_on_this_site_as_a_browser_reads_it() -> None:
    for value in HOSTILE + [v for v, _ in LOCAL] + ["/ok\t", "/%E2%80%AE", "/\u202etxt.exe"]:
        assert lands_on_this_site(safe_next(value)), value
        assert re.fullmatch(r"[\x21-\x7e]+", safe_next(value)), value  # a valid href and Location, as is


async def start_and_finish_sign_in(session, base: str, next_value: str) -> str:
    async with session.get(base + "/auth/login", params={"next": next_value}, allow_redirects=False) as resp:
        state = parse_qs(urlsplit(resp.headers["Location"]).query)["state"][0]
    async with session.post(base + "/auth/callback", data={"state": state, "email": "a@example.com"},
                            allow_redirects=False) as resp:
        assert resp.status == 302
        return resp.headers["Location"]


@pytest.mark.parametrize("value", ["/\t/evil.example", "/%09/evil", "\\\\evil", "https:evil", "/\\evil"])
async def test_sign_in_returns_only_to_this_site(client, value) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        assert await start_and_finish_sign_in(session, str(client.make_url("")).rstrip("/"), value) == "/"


def links(page: str) -> dict[str, str]:
    """The sign-in page's two links as the browser gets them: {"continue": href, "sign-in": href}."""
    found = {}
    for ident in ("continue-link", "sign-in"):
        match = re.search(rf'<a id="{ident}"[^>]*\shref="([^"]*)"', page)
        assert match, f"no #{ident} link with an href in the page"
        found[ident] = unescape(match.group(1))
    return found


@pytest.mark.parametrize("value", HOSTILE)
async def test_the_sign_in_page_links_go_where_the_server_would_send_the_browser(client, value) -> None:
    resp = await client.get("/login", params={"next": value})
    if "\x00" in value:  # a NUL in any query value is refused before any page sees it (inputs.check_request_text)
        assert resp.status == 400 and "continue-link" not in await resp.text()
        return
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    found = links(await resp.text())
    assert found["continue-link"] == "/"
    assert found["sign-in"] == "/auth/login?next=%2F"


async def test_the_sign_in_page_keeps_a_local_next(client) -> None:
    found = links(await (await client.get("/login", params={"next": "/billing?x=1&y=2"})).text())
    assert found["continue-link"] == "/billing?x=1&y=2"
    assert parse_qs(urlsplit(found["sign-in"]).query)["next"] == ["/billing?x=1&y=2"]


async def test_a_get_of_auth_login_never_ends_a_session(sign_in, sql) -> None:
    """A cross-site link (or image) to /auth/login must not sign anyone out: a signed-in browser is sent
    on to ``next`` (judged by the same rule) and keeps its session."""
    browser = await sign_in("ada@example.com")
    before = sql("SELECT id_hash, user_id FROM sessions ORDER BY id_hash")
    for value, expected in [("/account", "/account"), ("/\t/evil.example", "/"), (None, "/")]:
        resp = await browser.get("/auth/login" + ("" if value is None else "?next=" + value.replace("\t", "%09")))
        assert resp.status == 302 and resp.headers["Location"] == expected
        assert "portal_session" not in resp.cookies
    assert sql("SELECT id_hash, user_id FROM sessions ORDER BY id_hash") == before
    assert (await browser.request("GET", "/api/me")).status == 200


async def test_a_suspended_or_expired_session_may_start_a_new_sign_in(sign_in, sql) -> None:
    browser = await sign_in("frozen@example.com")
    sql("UPDATE users SET frozen_at = now()")
    resp = await browser.get("/auth/login")
    assert resp.status == 302 and resp.headers["Location"].startswith("/dev/login?")


async def test_only_the_post_sign_out_ends_a_session(sign_in, sql) -> None:
    browser = await sign_in("ada@example.com")
    assert (await browser.get("/auth/logout")).status == 405
    assert sql("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL") == [(1,)]
    resp = await browser.post("/auth/logout")
    assert resp.status == 302
    assert sql("SELECT count(*) FROM sessions") == [(0,)]


async def test_no_get_route_ends_or_replaces_a_signed_in_session(sign_in, client, sql) -> None:
    """Every GET route the portal has, asked by a signed-in browser (with made-up ids, and with ``next``
    pointing off-site): the session is the same one afterwards and still works."""
    browser = await sign_in("ada@example.com")
    before = sql("SELECT id_hash, user_id, csrf_token FROM sessions")
    paths = set()
    for resource in client.app.router.resources():
        if not any(route.method == "GET" for route in resource):
            continue
        info = resource.get_info()
        path = info.get("path") or info.get("formatter", "")
        paths.add(re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path))
    assert {"/auth/login", "/auth/callback", "/login", "/dev/login"} <= paths
    for path in sorted(paths):
        async with browser.get(path + "?next=//evil.example&state=x&code=y") as resp:
            assert resp.status < 500, (path, resp.status, await resp.text())
            assert "portal_session" not in resp.cookies, path
            location = resp.headers.get("Location", "")
            assert "evil.example" not in location, (path, location)
    assert sql("SELECT id_hash, user_id, csrf_token FROM sessions") == before
    assert (await browser.get("/api/me")).status == 200
