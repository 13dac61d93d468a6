"""The Stripe billing plugin: Pro subscriptions through Checkout, the Billing Portal and webhooks.

Hookimpls only. The ``stripe`` library is imported inside ``open``, i.e. only when BILLING_BACKEND=stripe.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources

from portal_core import hookimpl
from portal_core.backends import Backend, BackendContext

from .settings import StripeSettings


@contextlib.asynccontextmanager
async def _open(ctx: BackendContext) -> AsyncIterator[object]:
    from .billing import StripeBilling

    async with StripeBilling.from_config(ctx.settings, pool=ctx.pool, app_base_url=ctx.core.base_url) as billing:
        yield billing


@hookimpl
def portal_billing_backend() -> Backend:
    return Backend(name="stripe", open=_open, settings=StripeSettings,
                   description="Stripe Checkout, Billing Portal and signed webhooks")


@hookimpl
def portal_schema_sql(config) -> str:
    # Always contributed (whichever billing backend is selected) so switching backends never finds a
    # database without the table; creating an unused empty table is harmless.
    return resources.files(__name__).joinpath("schema.sql").read_text(encoding="utf-8")
