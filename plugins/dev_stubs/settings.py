"""The development billing backend's settings (read only when BILLING_BACKEND=dev)."""

from __future__ import annotations

import re

import attrs

from portal_core.config import setting
from portal_core.interfaces import Price

_PRICE = re.compile(r"^\s*(\d{1,9})\s+([A-Za-z]{3})\s*/\s*(day|week|month|year)\s*$", re.I)


def parse_price(raw: str) -> Price:
    """"900 usd/month" -> Price(900, "usd", "month"); ValueError naming the expected form otherwise."""
    match = _PRICE.match(raw)
    if match is None:
        raise ValueError(f"expected '<amount in cents> <currency>/<day|week|month|year>', e.g. '900 usd/month', got {raw!r}")
    amount, currency, interval = match.groups()
    return Price(int(amount), currency.lower(), interval.lower())


def _price(value: str) -> str | None:
    try:
        parse_price(value)
    except ValueError as exc:
        return str(exc)
    return None


@attrs.frozen
class DevBillingSettings:
    """DEV_PRICE_PRO: the price the development checkout shows for Pro (nothing is ever charged)."""

    price_pro: str = setting(
        "DEV_PRICE_PRO", default="900 usd/month", check=_price,
        hint="the pretend Pro price: amount in the currency's smallest unit, currency, interval, e.g. 900 usd/month")
