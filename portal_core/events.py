"""Events: facts such as ``artifact.created``, recorded in the same transaction as the change they record.

The ``events`` table is both the audit trail (the admin console, a customer's "recent activity") and the
outbox that feeds ``portal_event`` plugins: a trigger queues one delivery per consumer in the event's own
transaction (schema.sql), and :mod:`portal_core.outbox` delivers them once the transaction has committed.
docs/events.md lists every type with its fields.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

# The request an event is recorded in: set by the request middleware, read by record().
origin_var: contextvars.ContextVar[Origin | None] = contextvars.ContextVar("event_origin", default=None)

_TYPE = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")
# Keys that would put a secret in the audit trail. data carries ids and small values, never these.
_SECRET_KEYS = frozenset({"password", "secret", "token", "api_key", "csrf_token", "authorization", "cookie"})
_SECRET_VALUE = re.compile(r"^(pt_|whsec_|sk_|rk_)[A-Za-z0-9_-]{8,}")
MAX_DATA_BYTES = 4096
# What an event keeps in place of a value that looks like a token (see check_data).
REDACTED = "[redacted: looks like a secret]"
MAX_USER_AGENT = 300

EVENT_COLUMNS = "id, type, occurred_at, actor_id, owner_id, subject_id, data, request_id, ip, user_agent"


@attrs.frozen
class Origin:
    """Where the event came from: the request's id, the client's address and its user agent."""

    request_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None


@attrs.frozen
class Event:
    """One recorded fact, as ``portal_event`` handlers and the audit trail see it.

    ``actor_id`` is who did it (None for the system, or someone without an account); ``owner_id`` is the
    customer whose account or data it concerns (the audience of their activity list and webhooks);
    ``subject_id`` is the thing it is about (an artifact id, a token id, ...).
    """

    id: int
    type: str
    occurred_at: dt.datetime
    actor_id: int | None
    owner_id: int | None
    subject_id: str | None
    data: Mapping[str, Any]
    request_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def from_row(cls, row) -> Event:
        """Build an Event from a row of :data:`EVENT_COLUMNS`."""
        return cls(id=row[0], type=row[1], occurred_at=row[2], actor_id=row[3], owner_id=row[4], subject_id=row[5],
                   data=row[6] or {}, request_id=row[7], ip=row[8], user_agent=row[9])

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (the shape of ``portal events`` lines and the audit API)."""
        return {"id": self.id, "type": self.type, "occurred_at": self.occurred_at.isoformat(),
                "actor_id": self.actor_id, "owner_id": self.owner_id, "subject_id": self.subject_id,
                "data": dict(self.data), "request_id": self.request_id, "ip": self.ip, "user_agent": self.user_agent}


def check_data(data: Mapping[str, Any]) -> str:
    """``data`` as JSON text; ValueError when it is too big or has a key that names a secret (the code's
    mistake). A value that looks like a token is replaced by :data:`REDACTED`: values are often what a
    customer typed (a filename, a token's name), and one that looks like a secret is kept out of the events
    without refusing the change it describes."""
    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            for key in value:
                if str(key).lower() in _SECRET_KEYS:
                    raise ValueError(f"event data must not carry a secret (key {key!r})")
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(item) for item in value]
        if isinstance(value, str) and _SECRET_VALUE.match(value):
            return REDACTED
        return value

    text = json.dumps(walk(data), default=str, ensure_ascii=False)
    if len(text.encode()) > MAX_DATA_BYTES:
        raise ValueError(f"event data is {len(text.encode())} bytes; keep it under {MAX_DATA_BYTES} (ids, not documents)")
    return text


async def record(cur, type: str, *, actor_id: int | None = None, owner_id: int | None = None,
                 subject_id: object | None = None, data: Mapping[str, Any] | None = None,
                 origin: Origin | None = None) -> int:
    """Record one event with ``cur``, inside the caller's transaction; returns its id.

    Call it in the transaction that makes the fact true, so the event exists exactly when the change
    does. The request id, IP and user agent come from the current request unless ``origin`` is given.
    ``type`` is ``<noun>.<past-tense verb>`` and must be listed in docs/events.md.
    """
    if not _TYPE.match(type):
        raise ValueError(f"event type {type!r} is not of the form noun.past_tense_verb")
    origin = origin or origin_var.get() or Origin()
    user_agent = origin.user_agent[:MAX_USER_AGENT] if origin.user_agent else None
    await cur.execute(
        "INSERT INTO events (type, actor_id, owner_id, subject_id, request_id, ip, user_agent, data) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (type, actor_id, owner_id, None if subject_id is None else str(subject_id), origin.request_id, origin.ip,
         user_agent, check_data(data or {})))
    return (await cur.fetchone())[0]


async def record_now(pool, type: str, **fields: Any) -> int:
    """Record an event in a transaction of its own (for facts that change nothing else, like a download)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            return await record(cur, type, **fields)
