"""OpenID Connect sign-in (Pocket ID in production). Hookimpls only: authlib and joserfc load when selected."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from portal_core import hookimpl
from portal_core.backends import Backend, BackendContext

from .settings import OidcSettings


@contextlib.asynccontextmanager
async def _open(ctx: BackendContext) -> AsyncIterator[Any]:
    from .auth import OidcAuth  # authlib, joserfc and aiohttp's client load only when this backend is selected

    async with OidcAuth.from_config(ctx.settings) as auth:
        yield auth


@hookimpl
def portal_auth_backend() -> Backend:
    return Backend(name="oidc", open=_open, settings=OidcSettings,
                   description="OpenID Connect sign-in with Pocket ID (authorization code flow, PKCE)")
