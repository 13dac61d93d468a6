"""Fixtures for the OIDC plugin tests: a real provider (panva/oidc-provider) and OidcAuth clients of it."""

from __future__ import annotations

import pytest

from portal_plugins.oidc.auth import OidcAuth
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, client_session, running_provider


@pytest.fixture(scope="module")
def oidc_provider():
    """One provider shared by a module's tests (codes and sessions are single-use anyway)."""
    with running_provider() as provider:
        yield provider


@pytest.fixture
async def http():
    """The aiohttp session an OidcAuth talks to the provider through."""
    async with client_session() as session:
        yield session


@pytest.fixture
async def browser():
    """A separate cookie-keeping session playing the person's browser at the provider."""
    async with client_session() as session:
        yield session


@pytest.fixture
def make_auth(http):
    """Build an OidcAuth for the test client (the provider registers CLIENT_ID/CLIENT_SECRET) at an issuer."""
    def make(issuer: str, **options) -> OidcAuth:
        values = dict(issuer=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, session=http,
                      admin_group="portal-admins")
        values.update(options)
        return OidcAuth(**values)
    return make


@pytest.fixture
def auth(oidc_provider, make_auth) -> OidcAuth:
    return make_auth(oidc_provider.issuer)
