"""`portal` with artifact.created left unrecorded: the floor of bench/events.py's upload comparison.

Everything else is the shipped portal (same command, same settings); only the upload's event — the INSERT
into events, its trigger's fan-out to the consumers' queues and its NOTIFY — is skipped. Never shipped.
Run as ``python bench/portal_without_events.py`` with the portal's environment.
"""

from __future__ import annotations

import sys

from portal_core.web import upload


async def _not_recorded(cur, type, **fields) -> int:
    return 0


upload.record = _not_recorded

if __name__ == "__main__":
    from portal_core.cli import main

    sys.exit(main())
