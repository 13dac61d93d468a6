"""Hypothesis-made raw requests for every route in the router (API, pages, plugin routes), anonymous and
signed in (session cookie with its CSRF token, a bearer token, an admin's), with hostile headers, cookies,
query strings and bodies. Invariants: no 5xx, nothing logged at ERROR or with a traceback, and afterwards
the database and storage agree (rows equal objects, no partial files).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import EXAMPLES, FUZZ, Fuzzing
from .strategies import (body, extra_headers, fill_path, multipart_body, path_params, query_string, raw_bytes,
                         raw_request)

WHO = ["anonymous", "session", "token", "admin token", "garbage cookie", "garbage bearer"]


def credentials(fuzz: Fuzzing, who: str, garbage: bytes) -> list[tuple[bytes, bytes]]:
    if who == "session":
        return [(b"Cookie", b"portal_session=" + fuzz.customer.cookie.encode()),
                (b"X-CSRF-Token", fuzz.customer.csrf.encode())]
    if who == "token":
        return [(b"Authorization", b"Bearer " + fuzz.customer.token.encode())]
    if who == "admin token":
        return [(b"Authorization", b"Bearer " + fuzz.admin.token.encode())]
    if who == "garbage cookie":
        return [(b"Cookie", b"portal_session=" + garbage)]
    if who == "garbage bearer":
        return [(b"Authorization", b"Bearer pt_" + garbage)]
    return []


def routes(fuzz: Fuzzing) -> list[tuple[str, str]]:
    found = {(route.method, route.resource.canonical) for route in fuzz.portal.app.router.routes()
             if route.resource is not None}
    return sorted(found)


def test_every_route_answers_hostile_requests_without_a_5xx(fuzz: Fuzzing):
    table = routes(fuzz)
    assert len(table) > 60, table  # core, admin and plugin routes are all in the table

    @FUZZ
    @given(data=st.data())
    def run(data):
        method, canonical = data.draw(st.sampled_from(table), label="route")
        # Now and then a method the route does not take (405), or one nobody takes.
        method = data.draw(st.sampled_from([method] * 8 + ["PATCH", "OPTIONS", "PUT", "BREW"]), label="method")
        path = fill_path(canonical, data.draw(path_params(canonical, fuzz.known), label="path"))
        target = path.encode() + data.draw(query_string(), label="query")
        who = data.draw(st.sampled_from(WHO), label="who")
        garbage = data.draw(raw_bytes, label="garbage").replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")
        payload, content_type = data.draw(body(), label="body") if method not in ("GET", "HEAD", "DELETE") else (b"", None)
        headers = credentials(fuzz, who, garbage) + data.draw(extra_headers(), label="headers")
        fuzz.send(raw_request(method if method != "*" else "GET", target, headers, payload, content_type),
                  f"{method} {canonical} as {who}")
        if canonical.startswith("/auth/") or canonical.startswith("/api/tokens") or canonical.startswith("/api/admin/users"):
            fuzz.refresh()  # a sign-out, a new sign-in or a revoked token: keep both customers signed in
        if canonical == "/api/admin/settings":
            fuzz.reset_switches()

    run()
    fuzz.assert_consistent()


@pytest.mark.parametrize("storage", ["fuzz", "fuzz_r2"], ids=["dev storage", "r2 on moto"])
def test_uploads_count_only_when_complete(request, storage):
    """Streamed uploads (the owner's POST and a file request's page) with whole, cut-off and malformed
    multipart bodies: a cut-off or malformed body is a 4xx and leaves nothing; a whole one is stored whole."""
    fuzz: Fuzzing = request.getfixturevalue(storage)
    request_token = fuzz.known["token"][1]

    # The loopback S3 server is slow: the r2 run gets a fifth of the examples (scripts/fuzz raises both).
    @(FUZZ if storage == "fuzz" else settings(FUZZ, max_examples=max(20, EXAMPLES // 5)))
    @given(form=multipart_body(), where=st.sampled_from(["api", "request page"]))
    def run(form, where):
        if where == "api":
            target, headers = b"/api/artifacts", [(b"Authorization", b"Bearer " + fuzz.customer.token.encode())]
        else:
            target, headers = f"/r/{request_token}".encode(), []
        status, payload = fuzz.send(raw_request("POST", target, headers, form.body, form.content_type),
                                    f"POST {target.decode()[:12]} with a multipart body")
        if not form.complete:
            assert status >= 400, f"a cut-off body was accepted ({status}): {payload[:300]!r}"
        assert fuzz.agree(fuzz.portal) == [], f"after {form.body[-80:]!r}"

    run()
    fuzz.assert_consistent()
