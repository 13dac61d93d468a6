"""DevBilling: "upgrade to Pro" completes at once through a local fake checkout page.

Plan state is written to the same ``subscriptions`` table the Stripe plugin uses, via portal_core.plans.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from urllib.parse import urlencode

from portal_core import plans
from portal_core.interfaces import Health, PlanState, Price, UnknownPlan, User, WebhookRejected, WebhookResult

log = logging.getLogger("portal.dev_stubs")

PROVIDER = "dev"
PERIOD = dt.timedelta(days=30)
DEFAULT_PRICES = {"pro": Price(900, "usd", "month")}


class DevBilling:
    """Pretend payments: a "Pay" button subscribes, a "Cancel" button unsubscribes. Development only."""

    name = "dev"

    def __init__(self, pool, prices: Mapping[str, Price] = DEFAULT_PRICES) -> None:
        self.pool = pool
        self.price_list = dict(prices)
        self.paid_plans = tuple(sorted(self.price_list))
        log.warning("DevBilling is selected: no payment is ever taken (development only)")

    def plans(self) -> tuple[str, ...]:
        return self.paid_plans

    async def prices(self) -> Mapping[str, Price]:
        return dict(self.price_list)

    async def start_checkout(self, user: User, plan: str) -> str:
        if plan not in self.paid_plans:
            raise UnknownPlan(f"no plan named {plan!r}; choose one of: {', '.join(self.paid_plans)}")
        if (await self.current_plan(user.id)).name != plans.FREE:
            return await self.open_portal(user)
        return "/dev/billing/checkout?" + urlencode({"plan": plan})

    async def subscribe(self, user_id: int, plan: str) -> None:
        """The fake checkout's "Pay" button."""
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            async with cur.begin():
                await plans.write_subscription(
                    cur, user_id=user_id, provider=PROVIDER, plan=plan, status="active",
                    customer_id=f"dev_cus_{user_id}", subscription_id=f"dev_sub_{user_id}",
                    current_period_end=dt.datetime.now(dt.timezone.utc) + PERIOD)

    async def cancel(self, user_id: int) -> None:
        """The fake billing portal's "Cancel plan" button: back to free at once."""
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            async with cur.begin():
                await plans.write_subscription(cur, user_id=user_id, provider=PROVIDER, plan=plans.FREE,
                                               status="canceled")

    async def complete_checkout(self, user: User, params: Mapping[str, str]) -> None:
        return None  # the fake checkout already wrote the plan

    async def open_portal(self, user: User) -> str:
        return "/dev/billing/portal"

    async def handle_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        raise WebhookRejected("the development billing backend takes no webhooks")

    async def current_plan(self, user_id: int) -> PlanState:
        return await plans.read_plan(self.pool, user_id)

    async def health(self) -> Health:
        return Health.ok("development billing (no payments)")
