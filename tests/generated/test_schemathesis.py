"""Schemathesis over the portal's own OpenAPI description (/api/openapi.json): valid and invalid requests
for every described operation, anonymous and signed in (a customer's bearer token, an admin's, a session
cookie with its CSRF token). Invariants as for the raw requests: no 5xx, nothing logged at ERROR, and the
database and storage agree afterwards.
"""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from .conftest import DELIBERATE_5XX, FUZZ, Fuzzing

WHO = ["anonymous", "token", "admin token", "session"]


def auth(fuzz: Fuzzing, who: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, cookies) for ``who``."""
    if who == "token":
        return {"Authorization": f"Bearer {fuzz.customer.token}"}, {}
    if who == "admin token":
        return {"Authorization": f"Bearer {fuzz.admin.token}"}, {}
    if who == "session":
        return {"X-CSRF-Token": fuzz.customer.csrf}, {"portal_session": fuzz.customer.cookie}
    return {}, {}


def test_schemathesis_finds_no_server_error(fuzz: Fuzzing):
    schema = schemathesis.openapi.from_url(f"{fuzz.portal.url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40, [op.label for op in operations]  # the whole API is described
    strategies = [op.as_strategy(generation_mode=mode) for op in operations
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    http = requests.Session()

    @FUZZ
    @given(case=st.one_of(strategies), who=st.sampled_from(WHO))
    def run(case, who):
        headers, cookies = auth(fuzz, who)
        before = len(fuzz.portal.records)
        response = case.call(base_url=fuzz.portal.url, session=http, headers=headers, cookies=cookies,
                             allow_redirects=False, timeout=30)
        what = f"{case.operation.label} as {who}: {case.as_curl_command()}"
        if response.status_code >= 500:
            assert _code(response) in DELIBERATE_5XX, f"{what}\nanswered {response.status_code}: {response.text[:300]}"
        alarming = fuzz.portal.alarming(before)
        assert not alarming, f"{what}\nlogged {alarming}"
        path = case.operation.path
        if path.startswith(("/auth/", "/api/tokens", "/api/admin/users")):
            fuzz.refresh()
        if path == "/api/admin/settings":
            fuzz.reset_switches()
        http.cookies.clear()

    run()
    fuzz.assert_consistent()


def _code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
