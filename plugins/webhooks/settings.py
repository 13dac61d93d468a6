"""The webhooks plugin's settings (section ``webhooks``, always validated)."""

from __future__ import annotations

import attrs

from portal_core.config import between, setting

# Retry delays after each failed attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts over
# about 27.6 hours, so a receiver that is down for a day still gets everything (Standard Webhooks' advice).
DEFAULT_SCHEDULE = ("5", "300", "1800", "7200", "18000", "36000", "36000")


def schedule_seconds(schedule: tuple[str, ...]) -> tuple[float, ...]:
    return tuple(float(step) for step in schedule)


def _schedule(value: tuple[str, ...]) -> str | None:
    try:
        steps = schedule_seconds(value)
    except ValueError:
        return "must be comma-separated numbers of seconds, e.g. 5,300,1800"
    if not steps or any(step <= 0 for step in steps):
        return "must list at least one delay, each greater than zero"
    if any(later < earlier for earlier, later in zip(steps, steps[1:])):
        return "must not get shorter: each delay at least the one before (a backoff)"
    return None


@attrs.frozen
class WebhooksSettings:
    allow_private: bool = setting(
        "WEBHOOKS_ALLOW_PRIVATE", default=False, dev_default=True,
        hint="true lets endpoints be loopback, private, link-local or metadata addresses (a receiver on your own "
             "network); off in production, on in DEV_MODE")
    timeout_seconds: float = setting("WEBHOOKS_TIMEOUT_SECONDS", default=10.0, check=between(1, 60, " seconds"),
                                     hint="how long a receiver has to answer one delivery")
    retry_schedule: tuple[str, ...] = setting(
        "WEBHOOKS_RETRY_SCHEDULE", default=DEFAULT_SCHEDULE, check=_schedule,
        hint="seconds to wait before each retry of a failed delivery, comma-separated; the default retries "
             "for about 27 hours")
    max_endpoints: int = setting("WEBHOOKS_MAX_ENDPOINTS", default=10, check=between(1, 1000),
                                 hint="how many webhook endpoints one customer may register")
    retention_days: int = setting("WEBHOOKS_RETENTION_DAYS", default=30, check=between(1, 3650, " days"),
                                  hint="finished deliveries and their log are kept this long")

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return schedule_seconds(self.retry_schedule)
