"""Plan state in the ``subscriptions`` table, shared by every billing backend.

A billing backend decides *what* a customer's subscription is; this module is the one place that
says how that is stored and how a stored subscription becomes the plan whose limits apply.
"""

from __future__ import annotations

import datetime as dt

from .events import record
from .interfaces import PlanState

FREE = "free"
# Statuses under which the subscribed plan applies. past_due keeps the plan but warns.
PLAN_APPLIES = {"active", "trialing", "past_due"}
PAST_DUE_WARNING = "Your last payment failed. Update your payment method to keep your plan."


def effective_plan(plan: str | None, status: str | None, current_period_end: dt.datetime | None = None,
                   cancel_at_period_end: bool = False) -> PlanState:
    """The plan that applies for a stored subscription (canceled, unpaid, incomplete… → free)."""
    status = status or "none"
    if plan and status in PLAN_APPLIES:
        warning = PAST_DUE_WARNING if status == "past_due" else ""
        return PlanState(plan, status, current_period_end, cancel_at_period_end, warning)
    return PlanState(FREE, status, current_period_end, cancel_at_period_end)


async def read_plan(pool, user_id: int) -> PlanState:
    """The user's plan from the subscriptions table; no row means free."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "SELECT plan, status, current_period_end, cancel_at_period_end FROM subscriptions WHERE user_id = %s",
            (user_id,))
        row = await cur.fetchone()
    if row is None:
        return PlanState(FREE)
    return effective_plan(*row)


async def write_subscription(cur, *, user_id: int, provider: str, plan: str, status: str,
                             customer_id: str | None = None, subscription_id: str | None = None,
                             current_period_end: dt.datetime | None = None,
                             cancel_at_period_end: bool = False) -> None:
    """Store the whole current state of a user's subscription (not a delta), inside the caller's transaction.

    ``customer_id`` is kept when None is passed, so a backend that stored one at checkout keeps it. When the
    plan that applies changes (free → pro, pro → free, ...), a ``plan.changed`` event is recorded in the
    same transaction, whichever billing backend wrote it.
    """
    await cur.execute("SELECT plan, status FROM subscriptions WHERE user_id = %s FOR UPDATE", (user_id,))
    before = await cur.fetchone()
    old = effective_plan(*before) if before else PlanState(FREE)
    new = effective_plan(plan, status)
    await cur.execute(
        """
        INSERT INTO subscriptions (user_id, provider, plan, status, customer_id, subscription_id,
                                   current_period_end, cancel_at_period_end, updated_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
        ON CONFLICT (user_id) DO UPDATE SET
            provider = EXCLUDED.provider, plan = EXCLUDED.plan, status = EXCLUDED.status,
            customer_id = COALESCE(EXCLUDED.customer_id, subscriptions.customer_id),
            subscription_id = EXCLUDED.subscription_id,
            current_period_end = EXCLUDED.current_period_end,
            cancel_at_period_end = EXCLUDED.cancel_at_period_end, updated_at = now()
        """,
        (user_id, provider, plan, status, customer_id, subscription_id, current_period_end, cancel_at_period_end))
    if old.name != new.name:
        await record(cur, "plan.changed", owner_id=user_id, subject_id=user_id,
                     data={"old": old.name, "new": new.name, "status": status, "provider": provider})
