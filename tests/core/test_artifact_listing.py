"""GET /api/artifacts with ?q= (search by name) and ?sort=/&order=, page by page with cursors."""

from __future__ import annotations

import pytest

from tests.support.db import create_token, create_user

NAMES = ["Report 2024.pdf", "report-final.PDF", "notes.txt", "100%_done.txt", "under_score.txt", "Grüße.txt",
         "apple", "Banana", "cherry", "a\\b.txt"]


@pytest.fixture
def owner(database_url, sql):
    """A user with the NAMES as artifacts (sizes with ties, one minute apart), and another user's file."""
    user = create_user(database_url, email="ada@example.com")
    other = create_user(database_url, email="bob@example.com")
    for index, name in enumerate(NAMES):
        sql("INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key, created_at) "
            "VALUES (gen_random_uuid(), %s, %s, %s, 'text/plain', repeat('0', 64), %s, "
            "        now() - %s * interval '1 minute')",
            (user, name, (index % 3) * 100, f"k/{index}", index))
    sql("INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key) "
        "VALUES (gen_random_uuid(), %s, 'report of bob', 1, 'text/plain', repeat('0', 64), 'k/bob')", (other,))
    return user


async def walk(client, token: str, query: str, limit: int = 3) -> list[dict]:
    """Every artifact the listing gives for ``query``, following next_cursor page by page."""
    seen, cursor = [], None
    while True:
        path = f"/api/artifacts?limit={limit}&{query}" + (f"&cursor={cursor}" if cursor else "")
        async with client.get(path, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200, await resp.text()
            page = await resp.json()
        assert len(page["artifacts"]) <= limit
        seen += page["artifacts"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


@pytest.mark.parametrize("q, expected", [
    ("report", {"Report 2024.pdf", "report-final.PDF"}),  # any case; never another user's file
    (".pdf", {"Report 2024.pdf", "report-final.PDF"}),
    ("%", {"100%_done.txt"}),  # LIKE wildcards are matched literally
    ("_", {"100%_done.txt", "under_score.txt"}),
    ("\\", {"a\\b.txt"}),
    ("grüße", {"Grüße.txt"}),
    ("  notes  ", {"notes.txt"}),  # surrounding spaces are not part of the search
    ("nothing like it", set()),
])
async def test_search_finds_names_containing_the_text(client, database_url, owner, q, expected):
    from urllib.parse import quote

    token = create_token(database_url, owner)
    found = await walk(client, token, f"q={quote(q)}", limit=1)
    assert {a["name"] for a in found} == expected
    assert len(found) == len(expected)


@pytest.mark.parametrize("sort, order, sql_order", [
    ("created_at", "desc", "created_at DESC, id DESC"),
    ("created_at", "asc", "created_at ASC, id ASC"),
    ("name", "asc", "lower(name) ASC, id ASC"),
    ("name", "desc", "lower(name) DESC, id DESC"),
    ("size", "desc", "size DESC, id DESC"),
    ("size", "asc", "size ASC, id ASC"),
])
async def test_every_sort_pages_through_everything_once_in_order(client, database_url, sql, owner, sort, order,
                                                                 sql_order):
    token = create_token(database_url, owner)
    expected = [str(row[0]) for row in sql(f"SELECT id FROM artifacts WHERE owner_id = %s ORDER BY {sql_order}",
                                           (owner,))]
    assert [a["id"] for a in await walk(client, token, f"sort={sort}&order={order}")] == expected


async def test_each_sort_has_its_natural_default_order(client, database_url, owner):
    token = create_token(database_url, owner)
    names = [a["name"] for a in await walk(client, token, "sort=name", limit=50)]
    assert names[:2] == ["100%_done.txt", "a\\b.txt"] and names.index("apple") < names.index("Banana")
    sizes = [a["size"] for a in await walk(client, token, "sort=size", limit=50)]
    assert sizes == sorted(sizes, reverse=True)


async def test_search_and_sort_page_together(sign_in, sql, database_url):
    browser = await sign_in()
    user = sql("SELECT id FROM users WHERE email = 'ada@example.com'")[0][0]
    for index in range(7):
        sql("INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key) "
            "VALUES (gen_random_uuid(), %s, %s, %s, 'text/plain', repeat('0', 64), %s)",
            (user, f"build-{index}.log" if index % 2 else f"other-{index}", index, f"k/{index}"))
    seen, cursor = [], None
    while True:  # with the session cookie, as the dashboard asks
        path = "/api/artifacts?limit=2&q=BUILD&sort=size&order=asc" + (f"&cursor={cursor}" if cursor else "")
        async with browser.request("GET", path) as resp:
            page = await resp.json()
        seen += [a["name"] for a in page["artifacts"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ["build-1.log", "build-3.log", "build-5.log"]


@pytest.mark.parametrize("query, code", [
    ("sort=owner", "bad_sort"), ("sort=name&order=up", "bad_order"), ("q=" + "x" * 256, "bad_query"),
    ("q=a%00b", "bad_query"),
])
async def test_bad_search_and_sort_parameters_are_400_naming_them(sign_in, query, code):
    browser = await sign_in()
    async with browser.request("GET", f"/api/artifacts?{query}") as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["code"] == code
    assert query.split("=")[0].split("&")[-1] in body["error"]["message"] or code == "bad_order"


async def test_a_cursor_of_one_sort_is_refused_by_another(client, database_url, owner):
    token = create_token(database_url, owner)
    headers = {"Authorization": f"Bearer {token}"}
    async with client.get("/api/artifacts?limit=2&sort=name", headers=headers) as resp:
        cursor = (await resp.json())["next_cursor"]
    async with client.get(f"/api/artifacts?limit=2&sort=size&cursor={cursor}", headers=headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "bad_cursor"
    async with client.get(f"/api/artifacts?limit=2&cursor={cursor}", headers=headers) as resp:
        assert resp.status == 400
