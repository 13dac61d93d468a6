"""Background tasks that end when asked to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def stop_tasks(tasks: Iterable[asyncio.Task], *, repeat_every: float = 0.5) -> None:
    """Cancel ``tasks`` and wait until every one has ended.

    A cancellation can be lost: on Python 3.11, ``asyncio.wait_for`` (which aiopg uses around every query)
    swallows one that arrives just as the awaited query completes, and the task carries on. So the
    cancellation is repeated until the task is really gone, instead of waiting for it forever.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _done, pending = await asyncio.wait(pending, timeout=repeat_every)
