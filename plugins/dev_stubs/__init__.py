"""DEV_MODE stubs: development sign-in, local-disk storage and fake billing. Hookimpls only.

Each backend is ``development_only``: the core refuses to start in production with one selected.
"""

from __future__ import annotations

import contextlib

from portal_core import hookimpl
from portal_core.backends import Backend, BackendContext


@contextlib.asynccontextmanager
async def _open_auth(ctx: BackendContext):
    from .auth import DevAuth

    yield DevAuth()


@contextlib.asynccontextmanager
async def _open_storage(ctx: BackendContext):
    from .storage import LocalStorage

    yield LocalStorage(ctx.core.data_dir / "artifacts", base_url=ctx.core.base_url)


@contextlib.asynccontextmanager
async def _open_billing(ctx: BackendContext):
    from .billing import DevBilling
    from .settings import parse_price

    yield DevBilling(ctx.pool, prices={"pro": parse_price(ctx.settings.price_pro)})


@hookimpl
def portal_auth_backend():
    return Backend(name="dev", open=_open_auth, development_only=True,
                   description="development sign-in form: anyone signs in as anyone")


@hookimpl
def portal_storage_backend():
    return Backend(name="dev", open=_open_storage, development_only=True,
                   description="files on local disk under PORTAL_DATA_DIR/artifacts")


@hookimpl
def portal_billing_backend():
    from .settings import DevBillingSettings

    return Backend(name="dev", open=_open_billing, development_only=True, settings=DevBillingSettings,
                   description="fake checkout and billing portal; no payments")


@hookimpl
def portal_routes(config):
    from .direct import part_routes
    from .pages import routes_for

    routes = routes_for(auth=config.selections["auth"].backend.name == "dev",
                        billing=config.selections["billing"].backend.name == "dev")
    if config.selections["storage"].backend.name == "dev":
        routes = [*routes, *part_routes()]  # where direct uploads' signed part URLs point
    return routes
