"""Pauses between retries: how long to wait before each next try of something that failed."""

from __future__ import annotations

import random
from collections.abc import Iterator


def doubling(first: float, cap: float) -> Iterator[float]:
    """``first``, then twice the last, never more than ``cap``: the pause before each next try."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, cap)


def jittered(delay: float, spread: float) -> float:
    """``delay`` ± ``spread`` of itself (0.5: half either way), so processes that failed together do not all
    try again together."""
    return delay * random.uniform(1 - spread, 1 + spread)
