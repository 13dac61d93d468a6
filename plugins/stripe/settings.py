"""The Stripe backend's settings (read only when BILLING_BACKEND=stripe). No vendor imports here."""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from portal_core.config import setting


def _prefixed(*prefixes: str):
    def check(value: str) -> str | None:
        if value.startswith(prefixes):
            return None
        return f"must start with {' or '.join(prefixes)}"
    return check


def _http_base(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http:// or https:// URL"
    return None


def _positive(value: int) -> str | None:
    return None if value > 0 else "must be greater than zero"


def _not_negative(value: int) -> str | None:
    return None if value >= 0 else "must be zero or more"


@attrs.frozen
class StripeSettings:
    """STRIPE_* settings. Every STRIPE_PRICE_ID_<PLAN> offers plan <plan>; STRIPE_PRICE_ID_PRO is required."""

    secret_key: str = setting(
        "STRIPE_SECRET_KEY", secret=True, check=_prefixed("sk_", "rk_"),
        hint="the secret (sk_live_…/sk_test_…) or restricted (rk_…) API key from the Stripe dashboard, Developers → API keys")
    webhook_secret: str = setting(
        "STRIPE_WEBHOOK_SECRET", secret=True, check=_prefixed("whsec_"),
        hint="the signing secret (whsec_…) of the webhook endpoint <APP_BASE_URL>/webhooks/stripe in the Stripe dashboard")
    price_id_pro: str = setting(
        "STRIPE_PRICE_ID_PRO", check=_prefixed("price_", "plan_"),
        hint="the id (price_…) of the recurring Price customers pay for the Pro plan")
    price_ids: dict[str, str] = setting(
        "STRIPE_PRICE_ID_", prefix=True,
        hint="STRIPE_PRICE_ID_<PLAN>=price_… offers another paid plan <plan> (lower-cased)")
    api_base: str | None = setting(
        "STRIPE_API_BASE", default=None, check=_http_base,
        hint="leave unset in production; tests point every Stripe API address at a local fake")
    webhook_tolerance: int = setting(
        "STRIPE_WEBHOOK_TOLERANCE", default=300, check=_positive,
        hint="seconds a webhook's signed timestamp may be old before it is refused as a replay")
    health_cache_seconds: int = setting(
        "STRIPE_HEALTH_CACHE_SECONDS", default=60, check=_not_negative,
        hint="seconds /health reuses the last Stripe check (0 checks every time)")
    timeout: int = setting(
        "STRIPE_TIMEOUT", default=10, check=_positive,
        hint="seconds one request to Stripe may take")

    def plan_prices(self) -> dict[str, str]:
        """{plan name: price id} for every paid plan, Pro included."""
        return {**self.price_ids, "pro": self.price_id_pro}
