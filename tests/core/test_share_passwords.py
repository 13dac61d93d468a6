"""Password-protected share links: the form, 403 on a wrong password, the unlock cookie, and the lockout
(429 after ten wrong tries on one link within ten minutes), counted in the database across pods."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import psycopg2

from tests.support.sharing import make_pro, me_id, share, token_of, wait_for_lock_waiters

PASSWORD = "correct horse battery staple"


async def password_share(browser, sql, data: bytes) -> tuple[dict, str]:
    make_pro(sql, await me_id(browser))
    async with await browser.upload(data, "secret plans.pdf", "application/pdf") as resp:
        artifact = await resp.json()
    created = await share(browser, artifact["id"], password=PASSWORD)
    return created, token_of(created["url"])


def guest_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_the_password_form_a_wrong_password_and_the_right_one(sign_in, client, sql):
    browser = await sign_in()
    data = os.urandom(10_000)
    created, token = await password_share(browser, sql, data)
    assert created["has_password"] is True
    assert sql("SELECT data->>'has_password' FROM events WHERE type = 'share.created'") == [("true",)]
    (stored,) = sql("SELECT password_hash FROM shares")[0]
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    page, download = client.make_url(f"/s/{token}"), client.make_url(f"/s/{token}/download")
    async with guest_session() as guest:
        async with guest.get(page) as resp:
            assert resp.status == 200
            text = await resp.text()
        assert 'type="password"' in text and "secret plans.pdf" not in text  # nothing shown before the password
        async with guest.get(download) as resp:
            assert resp.status == 403
            assert 'type="password"' in await resp.text()
        async with guest.post(page, data={"password": "wrong"}, allow_redirects=False) as resp:
            assert resp.status == 403
            assert "That password is not right" in await resp.text()
        async with guest.post(page, data={"password": PASSWORD}, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == f"/s/{token}"
            cookie = resp.cookies["portal_share"]
            assert cookie["path"] == f"/s/{token}" and cookie["httponly"] and cookie["samesite"] == "Strict"
        async with guest.get(page) as resp:
            assert "secret plans.pdf" in await resp.text()
        async with guest.get(download) as resp:
            assert resp.status == 200 and await resp.read() == data
    # A script gives the password with the download itself; without it, or with a wrong one, nothing.
    async with guest_session() as script:
        async with script.post(download, data={"password": PASSWORD}) as resp:
            assert resp.status == 200 and await resp.read() == data
        async with script.post(download, data={"password": "nope"}) as resp:
            assert resp.status == 403
    assert sql("SELECT downloads FROM shares") == [(2,)]
    assert sql("SELECT count(*) FROM share_password_failures") == [(2,)]  # the wrong ones only
    assert not [row for row in sql("SELECT data::text FROM events") if PASSWORD in row[0]]


async def test_a_forged_or_another_links_unlock_cookie_opens_nothing(sign_in, client, sql):
    browser = await sign_in()
    _first, token = await password_share(browser, sql, b"one")
    async with browser.request("POST", f"/api/artifacts/{_first['artifact_id']}/shares",
                               json={"password": "other"}) as resp:
        other = token_of((await resp.json())["url"])
    async with guest_session() as guest:
        async with guest.post(client.make_url(f"/s/{other}"), data={"password": "other"}, allow_redirects=False) as resp:
            value = resp.cookies["portal_share"].value
        for forged in (value, "9999999999.00", "garbage"):
            async with guest.get(client.make_url(f"/s/{token}/download"), cookies={"portal_share": forged}) as resp:
                assert resp.status == 403, forged


async def test_ten_wrong_tries_across_two_pods_lock_the_link_for_ten_minutes(make_app, aiohttp_client, sign_in, sql):
    pods = [await aiohttp_client(make_app()), await aiohttp_client(make_app())]
    browser = await sign_in(on=pods[0])
    data = b"the plans"
    _created, token = await password_share(browser, sql, data)
    async with guest_session() as guest:
        statuses = []
        for attempt in range(10):  # alternating pods: only the database can count them together
            async with guest.post(pods[attempt % 2].make_url(f"/s/{token}"), data={"password": f"guess {attempt}"},
                                  allow_redirects=False) as resp:
                statuses.append(resp.status)
        assert statuses == [403] * 10
        for pod in pods:
            async with guest.post(pod.make_url(f"/s/{token}"), data={"password": PASSWORD}, allow_redirects=False) as resp:
                assert resp.status == 429  # even the right password, while locked
                assert 540 <= int(resp.headers["Retry-After"]) <= 601
                assert "too many wrong passwords" in (await resp.text()).lower()
            async with guest.get(pod.make_url(f"/s/{token}")) as resp:
                assert resp.status == 429
            async with guest.post(pod.make_url(f"/s/{token}/download"), data={"password": PASSWORD}) as resp:
                assert resp.status == 429
        # Ten minutes later the tries have aged out of the window.
        sql("UPDATE share_password_failures SET attempted_at = attempted_at - interval '10 minutes 1 second'")
        async with guest.post(pods[1].make_url(f"/s/{token}/download"), data={"password": PASSWORD}) as resp:
            assert resp.status == 200 and await resp.read() == data


async def test_right_passwords_do_not_count_towards_the_lockout(sign_in, client, sql):
    browser = await sign_in()
    _created, token = await password_share(browser, sql, b"x")
    url = client.make_url(f"/s/{token}")
    async with guest_session() as guest:
        for attempt in ["bad"] * 9 + [PASSWORD] * 3 + ["bad", "bad"]:
            async with guest.post(url, data={"password": attempt}, allow_redirects=False) as resp:
                last = resp.status
                if attempt == PASSWORD:
                    assert resp.status == 303
        assert last == 429  # the tenth wrong one was 403, the eleventh 429


async def test_concurrent_guesses_cannot_get_past_ten(sign_in, client, sql, database_url):
    browser = await sign_in()
    created, token = await password_share(browser, sql, b"x")
    gate = psycopg2.connect(database_url)  # hold the link's row: every guess queues at the lockout check together
    gate.cursor().execute("SELECT 1 FROM shares WHERE id = %s FOR UPDATE", (created["id"],))
    async with guest_session() as guest:
        async def guess(n: int) -> int:
            async with guest.post(client.make_url(f"/s/{token}"), data={"password": f"guess {n}"},
                                  allow_redirects=False) as resp:
                return resp.status

        tasks = [asyncio.ensure_future(guess(n)) for n in range(15)]
        await wait_for_lock_waiters(database_url, at_least=10)
        gate.commit()
        gate.close()
        statuses = sorted(await asyncio.gather(*tasks))
    assert statuses == [403] * 10 + [429] * 5
    assert sql("SELECT count(*) FROM share_password_failures") == [(10,)]
