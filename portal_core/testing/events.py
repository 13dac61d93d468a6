"""Capturing the events a portal delivers to plugins (the ``captured_events`` fixture)."""

from __future__ import annotations

import asyncio

from portal_core import hookimpl
from portal_core.events import Event


class CapturedEvents:
    """A plugin that keeps every event the portal delivers through ``portal_event``, in arrival order.

    Iterate it, index it or take its ``len`` like a list of :class:`~portal_core.events.Event`. Events
    arrive once their transaction has committed, a moment after the request that caused them answered, so
    wait for the one you expect::

        created = await captured_events.wait_for("artifact.created")
    """

    __name__ = "captured_events"  # the plugin's name: its deliveries are queued under it

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._arrived = asyncio.Event()

    @hookimpl
    async def portal_event(self, event: Event, app) -> None:
        self.events.append(event)
        self._arrived.set()

    def __iter__(self):
        return iter(list(self.events))

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index):
        return self.events[index]

    def __repr__(self) -> str:
        return f"<CapturedEvents {self.types()}>"

    def types(self) -> list[str]:
        """The types of the events captured so far, in arrival order."""
        return [event.type for event in self]

    def of_type(self, type: str) -> list[Event]:
        return [event for event in self if event.type == type]

    async def wait_for(self, type: str, *, count: int = 1, timeout: float = 10.0, **fields) -> Event:
        """The ``count``-th event of ``type`` whose attributes equal ``fields`` (``subject_id=...``), once it
        has arrived; fails after ``timeout`` seconds listing what did arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [e for e in self.of_type(type) if all(getattr(e, k) == v for k, v in fields.items())]
            if len(found) >= count:
                return found[count - 1]
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no {'%d ' % count if count > 1 else ''}{type} event"
                                     f"{' with ' + repr(fields) if fields else ''} within {timeout:g}s; "
                                     f"captured: {self.types()}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
