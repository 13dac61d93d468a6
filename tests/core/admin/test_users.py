"""The admin's view of users: list, search and filter, one user in detail, limit overrides, the overview."""

from __future__ import annotations

import pytest

from portal_core import hookimpl
from portal_core.settings import Limits


def user_id(sql, email: str) -> int:
    return sql("SELECT id FROM users WHERE email = %s", (email,))[0][0]


async def get(browser, path: str):
    async with browser.request("GET", path) as resp:
        return resp.status, await resp.json()


async def test_list_search_filter_and_page_through_users(sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    for n in range(5):
        await sign_in(f"user{n}@example.com", name=f"Person {n}")
    await sign_in("grace@hopper.example", name="Grace Hopper")
    sql("INSERT INTO subscriptions (user_id, plan, status, provider) VALUES (%s, 'pro', 'active', 'dev')",
        (user_id(sql, "user3@example.com"),))
    sql("UPDATE users SET frozen_at = now() WHERE email = 'user1@example.com'")

    status, page = await get(admin, "/api/admin/users?limit=4")
    assert status == 200 and len(page["users"]) == 4 and page["next_cursor"]
    status, rest = await get(admin, f"/api/admin/users?limit=4&cursor={page['next_cursor']}")
    emails = [u["email"] for u in page["users"] + rest["users"]]
    assert len(emails) == 7 == len(set(emails)) and rest["next_cursor"] is None
    assert emails[0] == "grace@hopper.example"  # newest first

    assert [u["email"] for u in (await get(admin, "/api/admin/users?q=HOPPER"))[1]["users"]] == ["grace@hopper.example"]
    assert [u["email"] for u in (await get(admin, "/api/admin/users?q=person%203"))[1]["users"]] == ["user3@example.com"]
    assert (await get(admin, "/api/admin/users?q=%25"))[1]["users"] == []  # % is text, not a wildcard
    pro = (await get(admin, "/api/admin/users?plan=pro"))[1]["users"]
    assert [(u["email"], u["plan"], u["subscription_status"]) for u in pro] == [("user3@example.com", "pro", "active")]
    assert len((await get(admin, "/api/admin/users?plan=free"))[1]["users"]) == 6
    # A plan billing no longer offers still finds the customers who have it.
    sql("UPDATE subscriptions SET plan = 'legacy' WHERE user_id = %s", (user_id(sql, "user3@example.com"),))
    assert [u["email"] for u in (await get(admin, "/api/admin/users?plan=legacy"))[1]["users"]] == ["user3@example.com"]
    sql("UPDATE subscriptions SET plan = 'pro' WHERE user_id = %s", (user_id(sql, "user3@example.com"),))
    frozen = (await get(admin, "/api/admin/users?frozen=true"))[1]["users"]
    assert [(u["email"], u["frozen"]) for u in frozen] == [("user1@example.com", True)]
    assert len((await get(admin, "/api/admin/users?frozen=false"))[1]["users"]) == 6
    one = pro[0]
    assert one["usage"] == {"bytes": 0, "files": 0} and one["limits_override"] is None
    assert one["last_sign_in_at"] and one["created_at"] and one["is_admin"] is False


@pytest.mark.parametrize("query, code", [
    ("frozen=maybe", "bad_frozen"), ("cursor=abc", "bad_cursor"), ("limit=0", "bad_limit"), ("q=" + "x" * 300, "bad_query"),
    ("q=%00", "bad_query"), ("plan=gold", "bad_plan"), ("plan=" + "p" * 300, "bad_plan"),
])
async def test_bad_list_queries_are_400(sign_in, query, code):
    admin = await sign_in("root@example.com", admin=True)
    status, body = await get(admin, f"/api/admin/users?{query}")
    assert status == 400 and body["error"]["code"] == code
    if code == "bad_plan":
        assert "free, pro" in body["error"]["message"]


async def test_one_user_in_detail_with_tokens_without_secrets_and_recent_events(sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    customer = await sign_in("ada@example.com")
    async with customer.request("POST", "/api/tokens", json={"name": "ci", "scopes": ["artifacts:read"]}) as resp:
        secret = (await resp.json())["token"]
    async with await customer.upload(b"12345", "five.txt") as resp:
        assert resp.status == 201
    status, user = await get(admin, f"/api/admin/users/{user_id(sql, 'ada@example.com')}")
    assert status == 200
    assert user["usage"] == {"bytes": 5, "files": 1}
    assert user["limits"] == {"max_file": 100 * 1024**2, "quota": 1024**3}  # the free plan's
    assert [(t["name"], t["scopes"]) for t in user["tokens"]] == [("ci", ["artifacts:read"])]
    assert secret not in str(user)
    assert [e["type"] for e in user["events"]][:3] == ["artifact.created", "token.created", "user.signed_in"]
    assert (await get(admin, "/api/admin/users/99999"))[0] == 404


class HalvingPlugin:
    """A portal_limits plugin: it sees the admin's override as the limits it may replace."""

    __name__ = "halving"

    def __init__(self) -> None:
        self.seen: list[Limits] = []

    @hookimpl
    def portal_limits(self, user, plan, limits, config):
        self.seen.append(limits)
        return Limits(max_file=limits.max_file, quota=limits.quota // 2) if user.email.startswith("half@") else None


async def test_a_limit_override_replaces_the_plans_limits_and_plugins_see_it(make_app, aiohttp_client, sign_in, sql):
    plugin = HalvingPlugin()
    client = await aiohttp_client(make_app(extra_plugins=[plugin], PLAN_FREE_MAX_FILE="1KiB", PLAN_FREE_QUOTA="2KiB"))
    admin = await sign_in("root@example.com", admin=True, on=client)
    customer = await sign_in("ada@example.com", on=client)
    ada = user_id(sql, "ada@example.com")
    async with await customer.upload(b"x" * 1500, "big.bin") as resp:
        assert resp.status == 413
    async with admin.request("PATCH", f"/api/admin/users/{ada}", json={"limits": {"max_file": "4KiB", "quota": 10000}}) as resp:
        assert resp.status == 200
        assert (await resp.json())["limits_override"] == {"max_file": 4096, "quota": 10000}
    async with await customer.upload(b"x" * 3000, "big.bin") as resp:
        assert resp.status == 201
    me = await (await customer.request("GET", "/api/me")).json()
    assert me["plan"]["limits"] == {"max_file": 4096, "quota": 10000}
    assert Limits(4096, 10000) in plugin.seen
    # Only one of them overridden: the other is the plan's.
    async with admin.request("PATCH", f"/api/admin/users/{ada}", json={"limits": {"quota": None, "max_file": 2048}}) as resp:
        assert (await resp.json())["limits_override"] == {"max_file": 2048, "quota": None}
    assert (await (await customer.request("GET", "/api/me")).json())["plan"]["limits"] == {"max_file": 2048, "quota": 2048}
    async with admin.request("PATCH", f"/api/admin/users/{ada}", json={"limits": None}) as resp:
        assert (await resp.json())["limits_override"] is None
    assert (await (await customer.request("GET", "/api/me")).json())["plan"]["limits"] == {"max_file": 1024, "quota": 2048}
    changes = sql("SELECT data FROM events WHERE type = 'admin.limits_changed' ORDER BY id")
    assert [c[0]["new"] for c in changes] == [{"max_file": 4096, "quota": 10000}, {"max_file": 2048, "quota": None},
                                              {"max_file": None, "quota": None}]
    assert changes[0][0]["old"] == {"max_file": None, "quota": None}


async def test_the_overview_counts_users_paying_storage_and_uploads_per_day(sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    customer = await sign_in("ada@example.com")
    for size in (10, 20):
        async with await customer.upload(b"x" * size, f"{size}.bin") as resp:
            assert resp.status == 201
    sql("INSERT INTO users (issuer, subject, email) VALUES ('test', 'idle', 'idle@example.com')")
    sql("INSERT INTO subscriptions (user_id, plan, status, provider) VALUES (%s, 'pro', 'active', 'dev')",
        (user_id(sql, "ada@example.com"),))
    sql("INSERT INTO subscriptions (user_id, plan, status, provider) VALUES (%s, 'pro', 'canceled', 'dev')",
        (user_id(sql, "idle@example.com"),))
    sql("INSERT INTO events (type, occurred_at, data) VALUES ('artifact.created', now() - interval '3 days', "
        "'{\"size\": 7}'), ('artifact.created', now() - interval '40 days', '{\"size\": 9}')")
    status, data = await get(admin, "/api/admin/overview")
    assert status == 200
    assert data["users"] == {"total": 3, "active_30_days": 2, "frozen": 0, "admins": 1}
    assert data["paying"] == [{"plan": "pro", "users": 1}]
    assert data["storage"] == {"bytes": 30, "files": 2}
    days = data["uploads_per_day"]
    assert len(days) == 30 and days == sorted(days, key=lambda d: d["date"])
    assert days[-1]["uploads"] == 2 and days[-1]["bytes"] == 30
    assert days[-4]["uploads"] == 1 and days[-4]["bytes"] == 7
    assert sum(d["uploads"] for d in days) == 3  # the 40-day-old one is outside the window
