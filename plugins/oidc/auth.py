"""OidcAuth: sign-in with an OpenID Connect provider (Pocket ID) over the authorization code flow.

authlib has no aiohttp client, so this module uses authlib's OAuth 2.0 pieces (request building,
PKCE, token generation) and joserfc's JOSE (id_token signature and claims) over one aiohttp session.
The flow: :meth:`OidcAuth.begin_login` makes a state, a nonce and a PKCE verifier and returns the
authorization URL; :meth:`OidcAuth.complete_login` checks the callback, exchanges the code with
client_secret_basic, verifies the id_token and reads the person's claims.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from portal_core.interfaces import Health, Identity, LoginFailed, LoginStart
from portal_core.web.inputs import same_secret

from .metadata import ProviderError, ProviderMetadata
from .tokens import TokenRejected, allowed_algorithms, key_id, verify_id_token

log = logging.getLogger(__name__)

UNREACHABLE = "The sign-in service is not answering right now. Please try again in a moment."
NOT_COMPLETED = "We could not complete your sign-in. Please try again."
HEALTH_TIMEOUT = 2.5  # seconds; /health gives each service check 3


class OidcAuth:
    """Signs people in with an OpenID Connect provider. Build it with plain values or :meth:`from_config`.

    ``session`` is an aiohttp session the caller owns (from_config makes one for the app's lifetime).
    Members of ``admin_group`` are admins. ``clock_skew`` seconds are tolerated on id_token times.
    ``form_action_origins`` is the provider's origin: sign-out forms end up redirected there.
    """

    name = "oidc"
    form_action_origins: tuple[str, ...]

    def __init__(self, *, issuer: str, client_id: str, client_secret: str, session: aiohttp.ClientSession,
                 scopes: str = "openid profile email groups", admin_group: str = "", timeout: float = 10,
                 clock_skew: int = 60, jwks_min_refetch: float = 10.0) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.session = session
        self.scopes = scopes.split()
        self.admin_group = admin_group
        self.timeout = timeout
        self.clock_skew = clock_skew
        self.metadata = ProviderMetadata(issuer, session, timeout=timeout, jwks_min_refetch=jwks_min_refetch)
        # Known before discovery answers: the CSP is built at startup, when the provider may be down.
        parts = urlsplit(issuer)
        self.form_action_origins = (f"{parts.scheme}://{parts.netloc}",)

    @classmethod
    @contextlib.asynccontextmanager
    async def from_config(cls, settings: Any) -> AsyncIterator[OidcAuth]:
        """An OidcAuth built from an :class:`~portal_plugins.oidc.settings.OidcSettings`, owning its HTTP session.

        Nothing is fetched here: the portal starts even while the provider is down (/health says so).
        """
        async with aiohttp.ClientSession(headers={"User-Agent": "portal-oidc"}) as session:
            yield cls(issuer=settings.issuer, client_id=settings.client_id, client_secret=settings.client_secret,
                      session=session, scopes=settings.scopes, admin_group=settings.admin_group,
                      timeout=settings.timeout, clock_skew=settings.clock_skew)

    # -----------------------------------------------------------------------------------------------
    # The AuthProvider interface

    async def begin_login(self, *, callback_url: str) -> LoginStart:
        """The provider's authorization URL (code flow, PKCE S256), and the state, nonce and verifier to keep."""
        document = await self._document()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        url = prepare_grant_uri(
            document["authorization_endpoint"], self.client_id, "code", redirect_uri=callback_url,
            scope=self.scopes, state=state, nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")
        return LoginStart(redirect_url=url, state={"state": state, "nonce": nonce, "code_verifier": verifier})

    async def complete_login(self, *, params: Mapping[str, str], state: Mapping[str, Any],
                             callback_url: str) -> Identity:
        """Check the callback, exchange the code, verify the id_token; who signed in. Raises LoginFailed."""
        expected = state.get("state")
        if not isinstance(expected, str) or not all(isinstance(state.get(k), str) for k in ("nonce", "code_verifier")):
            raise LoginFailed(NOT_COMPLETED, reason="the saved login state lacks state, nonce or code_verifier")
        if not same_secret(str(params.get("state", "")), expected):
            raise LoginFailed(NOT_COMPLETED, reason="state mismatch: the callback does not belong to this sign-in")
        if params.get("error"):
            error, description = params["error"], params.get("error_description", "")
            message = ("Sign-in was cancelled at the identity provider." if error == "access_denied"
                       else NOT_COMPLETED)
            raise LoginFailed(message, reason=f"the provider answered {error}: {description}".rstrip(": "))
        document = await self._document()
        # RFC 9207: when the provider names itself in the response, it must be ours (mix-up defence).
        if "iss" in params and params["iss"] != document["issuer"]:
            raise LoginFailed(NOT_COMPLETED, reason=f"callback iss {params['iss']!r} is not {document['issuer']!r}")
        code = params.get("code")
        if not code:
            raise LoginFailed(NOT_COMPLETED, reason="the callback carries no authorization code")
        tokens = await self._exchange(document, code=code, verifier=state["code_verifier"], callback_url=callback_url)
        claims = await self.verify_id_token(tokens["id_token"], nonce=state["nonce"])
        claims = {**await self._userinfo(document, tokens, subject=claims["sub"]), **claims}
        return self._identity(document["issuer"], claims, raw_id_token=tokens["id_token"])

    async def logout_url(self, *, session_data: Mapping[str, Any], post_logout_redirect_url: str) -> str | None:
        """The provider's end-session URL with id_token_hint (Pocket ID requires it), or None."""
        id_token = session_data.get("id_token")
        try:
            document = await self.metadata.document()
        except ProviderError as exc:
            log.warning("cannot sign out at the provider: %s", exc)
            return None
        endpoint = document.get("end_session_endpoint")
        if not isinstance(endpoint, str) or not isinstance(id_token, str):
            return None
        return add_params_to_uri(endpoint, [("id_token_hint", id_token), ("client_id", self.client_id),
                                            ("post_logout_redirect_uri", post_logout_redirect_url)])

    async def health(self) -> Health:
        """ok once the discovery document is known (cached, so cheap); degraded while it cannot be fetched."""
        try:
            # Shorter than the core's limit on a health check, so a silent provider reads "degraded".
            async with asyncio.timeout(min(self.timeout, HEALTH_TIMEOUT)):
                await self.metadata.document()
        except ProviderError as exc:
            return Health.degraded(f"identity provider unreachable: {exc}")
        except TimeoutError:
            return Health.degraded(f"identity provider unreachable: no discovery answer within {HEALTH_TIMEOUT:g}s")
        except Exception as exc:  # health must never raise
            log.exception("identity provider health check failed")
            return Health.degraded(f"identity provider unreachable: {exc!r}")
        return Health.ok(self.metadata.configured_issuer)

    # -----------------------------------------------------------------------------------------------
    # Steps

    async def verify_id_token(self, raw: str, *, nonce: str) -> dict[str, Any]:
        """The claims of a raw id_token once signature, iss, aud, exp, iat and nonce check out.

        An unknown key id makes the provider's keys be fetched again (key rotation). Raises LoginFailed.
        """
        document = await self._document()
        try:
            keys = await self.metadata.keys(document["jwks_uri"], key_id(raw))
            return verify_id_token(
                raw, keys, issuer=document["issuer"], client_id=self.client_id, nonce=nonce,
                leeway=self.clock_skew, algorithms=allowed_algorithms(document.get("id_token_signing_alg_values_supported")))
        except TokenRejected as exc:
            raise LoginFailed(NOT_COMPLETED, reason=str(exc)) from None
        except ProviderError as exc:
            raise LoginFailed(UNREACHABLE, reason=str(exc)) from None

    async def _document(self) -> dict[str, Any]:
        try:
            return await self.metadata.document()
        except ProviderError as exc:
            raise LoginFailed(UNREACHABLE, reason=f"identity provider unreachable: {exc}") from None

    async def _exchange(self, document: Mapping[str, Any], *, code: str, verifier: str,
                        callback_url: str) -> dict[str, Any]:
        """Trade the code for tokens at the token endpoint, authenticating with client_secret_basic."""
        url = document["token_endpoint"]
        body = prepare_token_request("authorization_code", code=code, redirect_uri=callback_url,
                                     code_verifier=verifier)
        # RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded.
        credentials = f"{quote(self.client_id, safe='')}:{quote(self._client_secret, safe='')}"
        headers = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
                   "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        try:
            async with self.session.post(url, data=body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                payload = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            self.metadata.forget()
            raise LoginFailed(UNREACHABLE, reason=f"token endpoint {url} failed: {exc!r}") from None
        if not isinstance(payload, dict):
            raise LoginFailed(NOT_COMPLETED, reason=f"token endpoint answered HTTP {status} without a JSON object")
        if status != 200 or "error" in payload:
            raise LoginFailed(NOT_COMPLETED, reason=(
                f"token endpoint refused the code (HTTP {status}): {payload.get('error')}: "
                f"{payload.get('error_description', '')}"))
        if not isinstance(payload.get("id_token"), str):
            raise LoginFailed(NOT_COMPLETED, reason="token endpoint answered without an id_token (is 'openid' in POCKET_ID_SCOPES?)")
        return payload

    async def _userinfo(self, document: Mapping[str, Any], tokens: Mapping[str, Any], *,
                        subject: str) -> dict[str, Any]:
        """Claims from the userinfo endpoint, best-effort: {} when it is absent, failing or about someone else."""
        url, access_token = document.get("userinfo_endpoint"), tokens.get("access_token")
        if not isinstance(url, str) or not isinstance(access_token, str):
            return {}
        try:
            async with self.session.get(url, headers={"Authorization": f"Bearer {access_token}",
                                                      "Accept": "application/json"},
                                        timeout=aiohttp.ClientTimeout(total=self.timeout)) as response:
                if response.status != 200:
                    log.warning("userinfo at %s answered HTTP %s; using the id_token's claims", url, response.status)
                    return {}
                claims = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.warning("userinfo at %s failed (%r); using the id_token's claims", url, exc)
            return {}
        # OIDC Core §5.3.2: userinfo about another subject must not be used.
        if not isinstance(claims, dict) or claims.get("sub") != subject:
            log.warning("userinfo at %s is not about subject %r; ignoring it", url, subject)
            return {}
        return claims

    def _identity(self, issuer: str, claims: Mapping[str, Any], *, raw_id_token: str) -> Identity:
        groups = claims.get("groups") or ()
        if isinstance(groups, str):
            groups = (groups,)
        groups = tuple(g for g in groups if isinstance(g, str))
        email = claims.get("email") if isinstance(claims.get("email"), str) else ""
        name = next((claims[k] for k in ("name", "preferred_username") if isinstance(claims.get(k), str) and claims[k]),
                    email or claims["sub"])
        return Identity(
            issuer=issuer, subject=claims["sub"], email=email, name=name,
            email_verified=claims.get("email_verified") in (True, "true"),
            groups=groups, is_admin=bool(self.admin_group) and self.admin_group in groups,
            session_data={"id_token": raw_id_token})
