"""Bidi controls in file names: stored as given, never displayed raw.

"evil\u202etxt.exe" (a right-to-left override) displays as "evilexe.txt" wherever it is shown raw. The
API keeps the exact name (it is data); every page shows each bidi control as U+FFFD, and the
Content-Disposition fallback name never carries one (filename*= keeps the exact UTF-8).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, unquote

import aiohttp
import pytest

from portal_core.display import BIDI_CONTROLS, display_text
from portal_core.http_headers import content_disposition
from tests.support.sharing import browser_form, make_pro, me_id, share, token_of

CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
            "\u200e", "\u200f", "\u061c"]
NAME = "invoice-\u202egpj.exe"  # displays as "invoice-exe.jpg" when shown raw


def test_every_bidi_control_is_neutralised_and_nothing_else() -> None:
    assert set(CONTROLS) == BIDI_CONTROLS
    for ch in CONTROLS:
        assert display_text(f"a{ch}b") == "a\ufffdb"
    ordinary = "Résumé 東京 עברית عربي ‍👩‍💻 tab\there"
    assert display_text(ordinary) == ordinary


def test_the_front_end_neutralises_the_same_characters() -> None:
    source = (Path(__file__).parents[2] / "assets" / "js" / "format.js").read_text(encoding="utf-8")
    pattern = re.search(r"const BIDI_CONTROLS = /\[(.*?)\]/g;", source).group(1)
    js = set()
    for low, high in re.findall(r"\\u([0-9A-Fa-f]{4})(?:-\\u([0-9A-Fa-f]{4}))?", pattern):
        js.update(chr(c) for c in range(int(low, 16), int(high or low, 16) + 1))
    assert js == BIDI_CONTROLS


@pytest.mark.parametrize("control", CONTROLS)
def test_the_content_disposition_fallback_never_carries_a_bidi_control(control) -> None:
    name = f"invoice-{control}gpj.exe"
    header = content_disposition(name)
    fallback = re.search(r'filename="([^"]*)"', header).group(1)
    assert fallback == "invoice-_gpj.exe" and fallback.isascii()
    assert unquote(re.search(r"filename\*=UTF-8''(\S+)", header).group(1)) == name


async def test_the_name_is_stored_and_downloaded_exactly_as_given(sign_in) -> None:
    browser = await sign_in("ada@example.com")
    async with await browser.upload(b"MZ not really", NAME) as resp:
        assert resp.status == 201, await resp.text()
        artifact = await resp.json()
    assert artifact["name"] == NAME
    async with browser.get(f"/api/artifacts/{artifact['id']}/download") as resp:
        header = resp.headers["Content-Disposition"]
    assert f"filename*=UTF-8''{quote(NAME, safe='')}" in header
    assert not BIDI_CONTROLS & set(re.search(r'filename="([^"]*)"', header).group(1))


async def test_the_share_page_shows_the_name_without_bidi_controls(sign_in, client) -> None:
    browser = await sign_in("ada@example.com")
    async with await browser.upload(b"MZ not really", NAME) as resp:
        artifact = await resp.json()
    link = await share(browser, artifact["id"])
    async with aiohttp.ClientSession() as visitor, visitor.get(client.make_url(f"/s/{token_of(link['url'])}")) as resp:
        page = await resp.text()
    assert resp.status == 200
    assert display_text(NAME) in page
    assert not BIDI_CONTROLS & set(page)


async def test_a_file_request_page_shows_sent_names_without_bidi_controls(sign_in, client, sql) -> None:
    owner = await sign_in("owner@example.com", name="Olivia \u202eOwner")
    make_pro(sql, await me_id(owner))
    async with owner.request("POST", "/api/requests", json={"title": "Papers \u2067please\u2069"}) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
    url = client.make_url(f"/r/{token_of(created['url'])}")
    body, content_type = browser_form({NAME: b"MZ"})
    async with aiohttp.ClientSession() as guest, guest.post(url, data=body, headers={"Content-Type": content_type}) as resp:
        page = await resp.text()
    assert resp.status == 201, page
    assert display_text(NAME) in page and "Olivia \ufffdOwner" in page
    assert not BIDI_CONTROLS & set(page)
    async with owner.request("GET", "/api/artifacts") as resp:
        assert [a["name"] for a in (await resp.json())["artifacts"]] == [NAME]
