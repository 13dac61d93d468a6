"""AuthConformance: what the portal relies on from every :class:`~portal_core.interfaces.AuthProvider`.

A sign-in round trip names the person the same way every time, and anything that is not the callback of
the sign-in this browser started is refused with :class:`~portal_core.interfaces.LoginFailed`. Subclass it,
provide an ``auth`` fixture, and play the person at your provider in :meth:`~AuthConformance.approve`::

    from portal_core.testing import AuthConformance

    class TestAcmeAuth(AuthConformance):
        @pytest.fixture
        async def auth(self, acme_provider):
            async with AcmeAuth(issuer=acme_provider.url, ...) as auth:
                yield auth

        async def approve(self, auth, start, email):
            ...  # open start.redirect_url, sign in as email, return the callback's query parameters
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from portal_core.interfaces import AuthProvider, Identity, LoginFailed, LoginStart
from portal_core.testing.conformance.shape import assert_implements


@pytest.mark.asyncio
class AuthConformance:
    """The auth cases. Provide ``auth``; implement :meth:`approve`."""

    #: Where the portal's callback would be; passed to begin_login and complete_login.
    callback_url = "http://127.0.0.1:8080/auth/callback"
    post_logout_url = "http://127.0.0.1:8080/"
    #: Two different people your provider can sign in (their emails).
    people = ("ada@example.com", "bob@example.com")

    async def approve(self, auth: AuthProvider, start: LoginStart, email: str) -> Mapping[str, str]:
        """Play the person: follow ``start.redirect_url``, sign in as ``email`` and consent; return the
        parameters the browser brings back to the callback (the redirect's query, or the posted form)."""
        raise NotImplementedError("AuthConformance needs approve(auth, start, email): how a person signs in")

    async def sign_in(self, auth: AuthProvider, email: str) -> Identity:
        start = await auth.begin_login(callback_url=self.callback_url)
        params = await self.approve(auth, start, email)
        return await auth.complete_login(params=params, state=start.state, callback_url=self.callback_url)

    # -- the cases -----------------------------------------------------------------------------------

    async def test_implements_the_interface(self, auth) -> None:
        assert_implements(auth, AuthProvider)
        assert isinstance(auth.name, str) and auth.name
        assert all(isinstance(origin, str) and origin.startswith(("http://", "https://"))
                   for origin in auth.form_action_origins)

    async def test_a_sign_in_names_the_person(self, auth) -> None:
        start = await auth.begin_login(callback_url=self.callback_url)
        assert start.redirect_url
        json.dumps(dict(start.state))  # kept in the server-side pre-login session
        params = await self.approve(auth, start, self.people[0])
        identity = await auth.complete_login(params=params, state=start.state, callback_url=self.callback_url)
        assert identity.email == self.people[0]
        assert identity.issuer and identity.subject and identity.name
        json.dumps(dict(identity.session_data))  # kept in the server-side session

    async def test_the_same_person_is_the_same_subject_and_another_is_not(self, auth) -> None:
        first = await self.sign_in(auth, self.people[0])
        again = await self.sign_in(auth, self.people[0])
        other = await self.sign_in(auth, self.people[1])
        assert (first.issuer, first.subject) == (again.issuer, again.subject)  # the portal keys users on these
        assert first.issuer == other.issuer and first.subject != other.subject

    async def test_every_sign_in_starts_with_its_own_state(self, auth) -> None:
        one = await auth.begin_login(callback_url=self.callback_url)
        two = await auth.begin_login(callback_url=self.callback_url)
        assert dict(one.state) != dict(two.state)

    async def test_the_callback_of_another_sign_in_is_refused(self, auth) -> None:
        mine = await auth.begin_login(callback_url=self.callback_url)
        theirs = await auth.begin_login(callback_url=self.callback_url)
        params = await self.approve(auth, theirs, self.people[1])
        with pytest.raises(LoginFailed) as failed:
            await auth.complete_login(params=params, state=mine.state, callback_url=self.callback_url)
        assert failed.value.message, "LoginFailed carries a sentence for the person"

    async def test_a_callback_without_parameters_is_refused(self, auth) -> None:
        start = await auth.begin_login(callback_url=self.callback_url)
        with pytest.raises(LoginFailed):
            await auth.complete_login(params={}, state=start.state, callback_url=self.callback_url)

    async def test_logout_url_is_none_or_an_absolute_url(self, auth) -> None:
        identity = await self.sign_in(auth, self.people[0])
        url = await auth.logout_url(session_data=identity.session_data, post_logout_redirect_url=self.post_logout_url)
        assert url is None or url.startswith(("http://", "https://"))

    async def test_health_is_ok(self, auth) -> None:
        health = await auth.health()
        assert health.status == "ok", health.detail
