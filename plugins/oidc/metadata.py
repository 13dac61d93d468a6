"""What the portal knows about its identity provider: the discovery document and the signing keys.

Both are fetched lazily over the app's aiohttp session and cached, so the portal starts while the
provider is briefly down. A failed fetch is never cached: the next caller tries again. The key set is
re-fetched when an id_token names a key id we do not have (the provider rotated its keys), at most
once per ``jwks_min_refetch`` seconds so a stream of forged kids cannot make us hammer the provider.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderError(Exception):
    """The provider could not be reached, or answered with something unusable. The message says which."""


async def fetch_json(session: aiohttp.ClientSession, url: str, *, timeout: float, what: str) -> Any:
    """GET ``url`` and parse its JSON body; every failure becomes a :class:`ProviderError` naming ``what``."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout),
                               headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                raise ProviderError(f"{what} at {url} answered HTTP {response.status}")
            return await response.json(content_type=None)
    except asyncio.TimeoutError:
        raise ProviderError(f"{what} at {url} did not answer within {timeout:g}s") from None
    except aiohttp.ClientError as exc:
        raise ProviderError(f"{what} at {url} is unreachable: {exc}") from exc
    except ValueError as exc:
        raise ProviderError(f"{what} at {url} did not answer JSON: {exc}") from exc


class ProviderMetadata:
    """The discovery document and JWKS of one issuer, fetched on first use and cached.

    ``issuer`` is the configured issuer URL; the discovery document must name the same issuer (a
    trailing slash aside), which protects against a misconfigured or mixed-up provider.
    """

    def __init__(self, issuer: str, session: aiohttp.ClientSession, *, timeout: float,
                 discovery_ttl: float = 3600.0, jwks_min_refetch: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.configured_issuer = issuer
        self.discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.session = session
        self.timeout = timeout
        self.discovery_ttl = discovery_ttl
        self.jwks_min_refetch = jwks_min_refetch
        self._clock = clock
        self._document: dict[str, Any] | None = None
        self._document_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at: float | None = None
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        """The discovery document (cached up to ``discovery_ttl``). Raises :class:`ProviderError`."""
        if self._document is not None and self._clock() - self._document_at < self.discovery_ttl:
            return self._document
        async with self._lock:
            if self._document is not None and self._clock() - self._document_at < self.discovery_ttl:
                return self._document
            try:
                document = self._check(await fetch_json(self.session, self.discovery_url, timeout=self.timeout,
                                                        what="the discovery document"))
            except ProviderError as exc:
                log.warning("identity provider discovery failed: %s", exc)
                raise
            self._document, self._document_at = document, self._clock()
            return document

    def _check(self, document: Any) -> dict[str, Any]:
        if not isinstance(document, dict):
            raise ProviderError(f"the discovery document at {self.discovery_url} is not a JSON object")
        issuer = document.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.configured_issuer.rstrip("/"):
            raise ProviderError(f"the discovery document names issuer {issuer!r}, but POCKET_ID_ISSUER is "
                                f"{self.configured_issuer!r}; set POCKET_ID_ISSUER to the provider's issuer")
        missing = [name for name in REQUIRED_ENDPOINTS if not isinstance(document.get(name), str)]
        if missing:
            raise ProviderError(f"the discovery document at {self.discovery_url} lacks {', '.join(missing)}")
        return document

    def forget(self) -> None:
        """Drop the cached discovery document, so the next use (and /health) asks the provider again.

        Called after the provider failed to answer a request: its endpoints may have moved.
        """
        self._document = None

    async def keys(self, jwks_uri: str, kid: str | None) -> KeySet:
        """The signing keys at ``jwks_uri``, re-fetched first if ``kid`` is unknown (and the rate limit allows)."""
        if self._keys is not None and self._has(kid):
            return self._keys
        async with self._lock:
            if self._keys is not None and self._has(kid):
                return self._keys
            recently = self._keys_at is not None and self._clock() - self._keys_at < self.jwks_min_refetch
            if self._keys is not None and recently:
                log.warning("id_token names unknown key id %r; not re-fetching the JWKS again so soon", kid)
                return self._keys
            # Stamp the attempt before fetching: failures count against the rate limit too.
            self._keys_at = self._clock()
            self._keys = await self._fetch_keys(jwks_uri)
            return self._keys

    def _has(self, kid: str | None) -> bool:
        return kid is None or any(key.kid == kid for key in self._keys)

    async def _fetch_keys(self, url: str) -> KeySet:
        data = await fetch_json(self.session, url, timeout=self.timeout, what="the signing keys (JWKS)")
        try:
            # Keys for encryption ("use": "enc") cannot verify a signature; leave them out.
            usable = [k for k in data.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"]
            return KeySet.import_key_set({"keys": usable})
        except (JoseError, AttributeError, TypeError, ValueError) as exc:
            raise ProviderError(f"the signing keys at {url} are unusable: {exc}") from exc
