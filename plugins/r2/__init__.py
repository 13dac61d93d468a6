"""The r2 plugin: artifacts in Cloudflare R2. Hookimpls only; aiobotocore is imported when selected."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from portal_core import hookimpl
from portal_core.backends import Backend, BackendContext

from .settings import R2Settings


@contextlib.asynccontextmanager
async def _open(ctx: BackendContext) -> AsyncIterator[object]:
    from .storage import R2Storage  # heavy import only when STORAGE_BACKEND=r2

    async with R2Storage.from_config(ctx.settings) as storage:
        yield storage


@hookimpl
def portal_storage_backend() -> Backend:
    """Offer the "r2" storage backend."""
    return Backend(name="r2", open=_open, settings=R2Settings, description="Cloudflare R2 via aiobotocore")


@hookimpl
def portal_cli(subparsers) -> None:
    """`portal storage cors [--apply]`: the bucket CORS rule browsers need for direct uploads."""
    from .cors import add_commands  # small: aiobotocore is imported only when --apply runs

    add_commands(subparsers)
