"""Every built-in AuthProvider through portal_core.testing's AuthConformance: DevAuth (the development
form), and OidcAuth against a real OpenID Connect provider (panva/oidc-provider on 127.0.0.1).

Each subclass plays the person at its provider: the development form is filled in; at the OIDC provider
its login and consent pages are walked over HTTP up to the redirect back to the portal.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from portal_core.testing import AuthConformance
from tests.support.oidc import CALLBACK_URL, CLIENT_ID, CLIENT_SECRET, client_session, running_provider, sign_in


class TestDevAuth(AuthConformance):
    @pytest.fixture
    def auth(self):
        from portal_plugins.dev_stubs.auth import DevAuth

        return DevAuth()

    async def approve(self, auth, start, email):
        # The development form posts back the state from its URL with what the person typed.
        state = parse_qs(urlsplit(start.redirect_url).query)["state"][0]
        return {"state": state, "email": email, "name": email.split("@")[0]}


@pytest.fixture(scope="module")
def oidc_provider():
    with running_provider() as provider:
        yield provider


class TestOidcAuth(AuthConformance):
    # The test provider signs in <login>@example.com for any login name.
    people = ("ada@example.com", "bob@example.com")
    callback_url = CALLBACK_URL

    @pytest.fixture
    async def auth(self, oidc_provider):
        from portal_plugins.oidc.auth import OidcAuth

        async with client_session() as http, client_session() as browser:
            self.browser = browser  # the person's browser at the provider, with its cookies
            yield OidcAuth(issuer=oidc_provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                           session=http, admin_group="portal-admins")

    async def approve(self, auth, start, email):
        self.browser.cookie_jar.clear()  # each sign-in as its own person, not the provider's last session
        back = await sign_in(self.browser, start.redirect_url, stop_at=self.callback_url, login=email.split("@")[0])
        return dict(back.query)
