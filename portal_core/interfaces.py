"""The three service interfaces (auth, storage, billing), the optional direct-upload capability of
storage, the values they exchange, and their errors.

Views and webhooks talk only to these Protocols. Only the plugin that implements one imports its
vendor library (authlib, aiobotocore, stripe). A conformance suite in tests/ runs every
implementation of an interface through the same cases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

import attrs

# ---------------------------------------------------------------------------------------------------
# Shared values


@attrs.frozen
class Health:
    """The outcome of a service's health check, as /health reports it.

    ``status`` is "ok", "degraded" (working, but something needs attention — for example the identity
    provider is briefly unreachable) or "down".
    """

    status: str
    detail: str = ""

    @classmethod
    def ok(cls, detail: str = "") -> Health:
        return cls("ok", detail)

    @classmethod
    def degraded(cls, detail: str) -> Health:
        return cls("degraded", detail)

    @classmethod
    def down(cls, detail: str) -> Health:
        return cls("down", detail)


@attrs.frozen
class User:
    """A signed-in customer, as the core hands it to services."""

    id: int
    email: str
    name: str
    is_admin: bool


class ServiceError(Exception):
    """Base for the errors a service may raise; the core turns them into HTTP answers."""


class ServiceUnavailable(ServiceError):
    """The remote service (provider, bucket, billing API) cannot be reached or answered with an error.

    The core answers 503 with the message; nothing is written.
    """


# ---------------------------------------------------------------------------------------------------
# Auth


@attrs.frozen
class LoginStart:
    """Where to send the browser to sign in, and what to remember until it comes back.

    ``state`` is kept in the browser's server-side pre-login session (never in a cookie) and handed
    back to :meth:`AuthProvider.complete_login`. It must be JSON-serialisable.
    """

    redirect_url: str
    state: Mapping[str, Any]


@attrs.frozen
class Identity:
    """Who the provider says signed in.

    The core upserts the user by ``(issuer, subject)``. ``session_data`` is stored in the server-side
    session (for OIDC: the id_token needed for logout) and handed back to
    :meth:`AuthProvider.logout_url`. It must be JSON-serialisable.
    """

    issuer: str
    subject: str
    email: str
    name: str
    email_verified: bool = False
    groups: tuple[str, ...] = ()
    is_admin: bool = False
    session_data: Mapping[str, Any] = attrs.field(factory=dict)


class LoginFailed(ServiceError):
    """Sign-in did not succeed: state mismatch, denied consent, invalid token, provider down…

    ``message`` is shown to the person (friendly, no internals); ``reason`` is logged for the operator.
    No session is created.
    """

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or message


@runtime_checkable
class AuthProvider(Protocol):
    """Signs people in. Production: OIDC (Pocket ID); DEV_MODE: a development sign-in form.

    ``form_action_origins`` lists origins a signed-in page's sign-out form may end up redirected to
    (the provider's end-session endpoint); the core adds them to the CSP's form-action.
    """

    name: str
    form_action_origins: tuple[str, ...]

    async def begin_login(self, *, callback_url: str) -> LoginStart:
        """Start a sign-in: the URL to redirect the browser to, and the state to keep until the callback."""

    async def complete_login(self, *, params: Mapping[str, str], state: Mapping[str, Any], callback_url: str) -> Identity:
        """Finish a sign-in from the callback's query or form parameters and the state kept at begin.

        Raises :class:`LoginFailed` for anything the person can run into.
        """

    async def logout_url(self, *, session_data: Mapping[str, Any], post_logout_redirect_url: str) -> str | None:
        """Where to send the browser after the local session is deleted, or None to stay on the portal."""

    async def health(self) -> Health:
        """Whether sign-in works right now (for /health). Must be cheap and never raise."""


# ---------------------------------------------------------------------------------------------------
# Storage


@attrs.frozen
class StoredObject:
    """What a completed :meth:`Storage.put` wrote."""

    key: str
    size: int


@attrs.frozen
class Download:
    """How to hand an object to the browser: a short-lived URL (the core answers 302), or a stream.

    Exactly one of ``url`` and ``stream`` is set; ``size`` is known for streams.
    """

    url: str | None = None
    stream: AsyncIterator[bytes] | None = None
    size: int | None = None


class ObjectTooLarge(ServiceError):
    """The body grew past ``limit`` bytes while streaming. Nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"object exceeds {limit} bytes")
        self.limit = limit


class ObjectNotFound(ServiceError):
    """No object is stored under this key."""


@runtime_checkable
class Storage(Protocol):
    """Keeps artifact bytes. Production: Cloudflare R2; DEV_MODE: files on local disk.

    Keys are generated by the core (``<user id>/<uuid>``), never derived from a filename.
    """

    name: str

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int, content_type: str) -> StoredObject:
        """Stream ``chunks`` into a new object under ``key``; memory stays bounded whatever the size.

        Raises :class:`ObjectTooLarge` as soon as more than ``max_bytes`` arrive. If anything fails —
        too large, the iterator raising (client disconnect), cancellation, a remote error — nothing is
        left behind (partial files removed, multipart uploads aborted) and the error propagates.
        """

    async def download(self, key: str, *, filename: str, content_type: str) -> Download:
        """A short-lived URL for the object (with ``filename`` as its download name), or a stream of it."""

    async def delete(self, key: str) -> None:
        """Remove the object. Deleting a key that does not exist is not an error."""

    async def health(self) -> Health:
        """Whether objects can be stored right now (for /health). Must be cheap and never raise."""


# ---------------------------------------------------------------------------------------------------
# Direct uploads: an optional second storage capability


@attrs.frozen
class PartLimits:
    """What a storage accepts in one multipart upload (S3 and R2: 5 MiB to 5 GiB, 10,000 parts).

    Every part but the last must be at least ``min_size``; ``preferred_size`` is the part size the
    portal's own clients are told to use (raised when a file would otherwise need more than ``max_parts``).
    """

    min_size: int
    max_size: int
    max_parts: int
    preferred_size: int


@attrs.frozen
class StoredPart:
    """One part a multipart upload holds: its number, its ETag (quoted, as S3 gives it) and its size."""

    number: int
    etag: str
    size: int


@attrs.frozen
class PresignedPart:
    """Where the client PUTs one part's bytes, and until when (seconds since the epoch) that works."""

    url: str
    expires_at: float


class UploadNotFound(ServiceError):
    """Storage has no such multipart upload (never created, or already completed or aborted)."""


@runtime_checkable
class DirectUploads(Protocol):
    """Optional, next to :class:`Storage`: clients send an object's bytes straight to storage, in parts.

    The core keeps the bookkeeping (who may upload what, how much, until when) and only authorizes:
    it creates the multipart upload under a key it generated, presigns one expiring PUT URL per part,
    lists the parts storage holds, and completes or aborts. Bytes never pass through the portal.
    Production: R2 (presigned ``UploadPart`` URLs); DEV_MODE: HMAC-signed part URLs the portal itself
    serves, parts on local disk. A storage without it still takes the streamed POST; ``/api/s3`` then
    answers 501. The core checks ``isinstance(storage, DirectUploads)`` once, at startup.

    ``upload_origins`` are the origins the browser PUTs parts to (the core adds them to the CSP's
    connect-src; the dev storage's parts go to the portal itself, so it has none).
    """

    part_limits: PartLimits
    upload_origins: tuple[str, ...]

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload of ``key``; returns its upload id."""

    async def presign_part(self, key: str, upload_id: str, number: int, *, expires_in: int) -> PresignedPart:
        """An expiring URL the client PUTs part ``number`` to (its answer carries the part's ETag).

        No request to storage is needed; a missing upload shows when the URL is used.
        """

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """Every part stored so far, in part-number order (however many pages storage answers in).

        Raises :class:`UploadNotFound` when the upload does not exist (any more).
        """

    async def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        """Join ``parts`` (in order) into the object ``key``. Raises :class:`UploadNotFound`."""

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop the upload and every part it holds. Aborting one that does not exist is not an error."""

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The stored object's bytes from ``start`` up to (not including) ``end``, as a stream.

        For the core's own checks (a policy's look at the first bytes, the SHA-256 verification);
        memory stays bounded whatever the size. Raises :class:`ObjectNotFound` when there is no object.
        """


# ---------------------------------------------------------------------------------------------------
# Billing


@attrs.frozen
class PlanState:
    """A user's current plan, as billing knows it.

    ``name`` is the plan whose limits apply ("free", "pro", …). ``status`` is the provider's
    subscription status ("active", "trialing", "past_due", "canceled", … or "none"). ``warning`` is a
    sentence for the UI when something needs the customer's attention (past_due), else "".
    """

    name: str
    status: str = "none"
    current_period_end: dt.datetime | None = None
    cancel_at_period_end: bool = False
    warning: str = ""


@attrs.frozen
class Price:
    """What one paid plan costs.

    ``amount`` is in the currency's smallest unit (cents for USD, yen for JPY), ``currency`` a
    lower-case ISO 4217 code ("usd"), and the plan is billed every ``interval_count`` ``interval``s
    ("day", "week", "month" or "year").
    """

    amount: int
    currency: str
    interval: str
    interval_count: int = 1


@attrs.frozen
class WebhookResult:
    """What a delivered webhook did: ``outcome`` is "applied", "duplicate" or "ignored"."""

    event_id: str
    event_type: str
    outcome: str


class WebhookRejected(ServiceError):
    """The webhook is not authentic or not well-formed (bad signature, stale timestamp, bad JSON).

    The core answers 400 with the message; nothing changes.
    """


class UnknownPlan(ServiceError):
    """The requested plan is not offered."""


@runtime_checkable
class Billing(Protocol):
    """Takes payment for plans. Production: Stripe; DEV_MODE: a local fake checkout.

    Plan state lives in the core's ``subscriptions`` table, whichever implementation writes it.
    """

    name: str

    def plans(self) -> tuple[str, ...]:
        """The paid plans on offer (every implementation also has "free")."""

    async def prices(self) -> Mapping[str, Price]:
        """Each paid plan's :class:`Price`, keyed by plan name (every name :meth:`plans` gives).

        May be cached (the billing page asks on every visit). Raises :class:`ServiceUnavailable` when
        the prices cannot be read right now; the core then shows the plans without prices.
        """

    async def start_checkout(self, user: User, plan: str) -> str:
        """The URL of a checkout page for ``plan``; for a user already subscribed, the billing portal."""

    async def complete_checkout(self, user: User, params: Mapping[str, str]) -> None:
        """Called when the browser returns to /billing/success: sync the plan at once (users often
        come back before the webhook does)."""

    async def open_portal(self, user: User) -> str:
        """The URL of a page where the customer manages or cancels their subscription."""

    async def handle_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        """Verify and apply one webhook delivery from the raw body bytes; idempotent per event id.

        Raises :class:`WebhookRejected` for anything not authentic or malformed.
        """

    async def current_plan(self, user_id: int) -> PlanState:
        """The user's plan right now."""

    async def health(self) -> Health:
        """Whether billing works right now (for /health). Must be cheap and never raise."""
