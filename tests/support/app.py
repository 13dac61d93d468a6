"""In-process portal apps for API tests, built through the same create_app the CLI uses (fixtures: make_app,
client, sign_in) — on top of the portal's test kit (portal_core.testing), which plugin authors use too."""

from __future__ import annotations

import pytest

from portal_core.testing import SignedIn, browser_multipart, close_signed_in, make_portal_app, signed_in

# The kit's signed-in customer; tests here have long called it a Browser.
Browser = SignedIn
__all__ = ["Browser", "browser_multipart"]


@pytest.fixture
def make_app(database_url, tmp_path):
    """make_app(**env) -> an Application in DEV_MODE on the test database, with extra env."""

    def build(extra_plugins=(), **env):
        return make_portal_app(database_url, tmp_path / "data", env, extra_plugins)

    return build


@pytest.fixture
async def client(portal_client):
    """A test client on a DEV_MODE portal (the kit's ``portal_client``)."""
    return portal_client


@pytest.fixture
async def sign_in(client):
    """sign_in(email, on=client) -> a Browser signed in through the real dev login flow.

    ``on`` defaults to the ``client`` fixture's portal; pass another test client to sign in there.
    """
    used = []

    async def make(email: str = "ada@example.com", *, on=None, admin: bool = False, name: str = "Ada",
                   next_path: str = "/") -> SignedIn:
        target = on if on is not None else client
        used.append(target)
        return await signed_in(target, email, admin, name=name, next_path=next_path)

    yield make
    for target in used:
        await close_signed_in(target)
