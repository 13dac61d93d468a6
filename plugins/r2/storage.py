"""R2Storage: artifacts in a Cloudflare R2 bucket, spoken to through aiobotocore's S3 client.

One client lives as long as the storage (``async with R2Storage(...)``); it is never made per request.
It also offers direct uploads (plugins/r2/direct.py): clients PUT parts to presigned URLs. Streamed uploads: small bodies go in one PutObject, larger ones become a multipart upload whose parts are
sent as they fill, so memory stays around one part whatever the size. Downloads are presigned GET URLs
the browser fetches from R2 directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import attrs
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

from portal_core.http_headers import content_disposition
from portal_core.interfaces import Download, Health, ObjectTooLarge, ServiceUnavailable, StoredObject

from .direct import MAX_PARTS, R2DirectUploads
from .settings import MAX_PART_SIZE, MIN_PART_SIZE, MiB, R2Settings

log = logging.getLogger(__name__)

DEFAULT_PART_SIZE = 8 * MiB

# Errors that mean "the remote did not do what we asked": a refused connection, a timeout, a 5xx…
_REMOTE_ERRORS = (BotoCoreError, ClientError, aiohttp.ClientError, OSError)


def part_size_for(max_bytes: int, part_size: int) -> int:
    """The part size to use for an upload of at most ``max_bytes``.

    R2 allows 10,000 parts, all the same size but the last. When the configured size cannot reach
    ``max_bytes`` in that many parts, a larger size (rounded up to whole MiB) is used instead, so a
    big upload limit never fails at part 10,001; memory per upload grows with it.
    """
    needed = math.ceil(max_bytes / MAX_PARTS)
    if needed <= part_size:
        return part_size
    size = math.ceil(needed / MiB) * MiB
    if size > MAX_PART_SIZE:
        raise ValueError(f"an upload limit of {max_bytes} bytes is more than R2 can hold in one object")
    return size


def botocore_config(*, addressing_style: str) -> AioConfig:
    """The client configuration R2 needs.

    botocore >= 1.36 adds CRC32 checksums to every request by default (aws-chunked trailers), which
    R2 rejects; "when_required" sends them only for operations that demand one.
    """
    return AioConfig(
        signature_version="s3v4",
        s3={"addressing_style": addressing_style},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
    )


@attrs.define
class _Upload:
    """What one put has done so far, so a failure knows what to undo."""

    upload_id: str | None = None
    finishing: bool = False  # a PutObject / CompleteMultipartUpload was sent: the object may exist


class R2Storage(R2DirectUploads):
    """Keeps artifacts in an R2 bucket. Use as ``async with R2Storage(...) as storage``.

    The constructor takes plain values (so a test builds one directly); :meth:`from_config` builds
    one from the plugin's settings. ``session`` lets a caller supply its own ``AioSession``.
    """

    name = "r2"

    def __init__(
        self,
        *,
        endpoint_url: str,
        access_key_id: str,
        secret_access_key: str,
        bucket: str,
        region: str = "auto",
        addressing_style: str = "path",
        presign_seconds: int = 300,
        multipart_threshold: int = DEFAULT_PART_SIZE,
        part_size: int = DEFAULT_PART_SIZE,
        health_timeout: float = 3.0,
        session: AioSession | None = None,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between 5 MiB and 5 GiB, got {part_size}")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.bucket = bucket
        self.region = region
        self.addressing_style = addressing_style
        self.presign_seconds = presign_seconds
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.health_timeout = health_timeout
        self._credentials = (access_key_id, secret_access_key)
        self._session = session
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._cleanups: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, settings: R2Settings) -> R2Storage:
        """An R2Storage for the validated settings section; enter it to open the client."""
        return cls(
            endpoint_url=settings.endpoint,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
            bucket=settings.bucket,
            region=settings.region,
            addressing_style=settings.addressing_style,
            presign_seconds=settings.presign_seconds,
            multipart_threshold=settings.multipart_threshold,
            part_size=settings.part_size,
            health_timeout=settings.health_timeout,
        )

    # -- lifetime ------------------------------------------------------------------------------------

    async def __aenter__(self) -> R2Storage:
        if self._client is not None:
            raise RuntimeError("this R2Storage is already open")
        session = self._session or AioSession()
        access_key_id, secret_access_key = self._credentials
        async with contextlib.AsyncExitStack() as stack:
            self._client = await stack.enter_async_context(session.create_client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=botocore_config(addressing_style=self.addressing_style),
            ))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Let aborts of failed uploads finish before the client goes away.
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    @property
    def client(self) -> Any:
        """The open S3 client (an aiobotocore client); raises if the storage is not entered."""
        if self._client is None:
            raise RuntimeError("R2Storage is not open: use `async with R2Storage(...)`")
        return self._client

    @contextlib.contextmanager
    def _remote(self, action: str) -> Iterator[None]:
        """Turn whatever the remote or the network raised into ServiceUnavailable (the core answers 503)."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            raise ServiceUnavailable(
                f"R2 {action} failed: bucket {self.bucket!r} answered {status} "
                f"{error.get('Code', '')} {error.get('Message', '')}".rstrip()) from exc
        except _REMOTE_ERRORS as exc:
            raise ServiceUnavailable(f"R2 {action} failed: cannot reach {self.endpoint_url}: {exc}") from exc

    # -- Storage -------------------------------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, max_bytes: int, content_type: str) -> StoredObject:
        """Stream ``chunks`` into ``key``; on any failure abort/delete what was written and re-raise."""
        upload = _Upload()
        try:
            return await self._put(key, chunks, upload, max_bytes=max_bytes, content_type=content_type)
        except BaseException:
            # Runs on cancellation too: shielded so a cancelled request still aborts its upload,
            # and kept referenced so it finishes even if we are cancelled again while waiting.
            cleanup = asyncio.ensure_future(self._discard(key, upload))
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
            await asyncio.shield(cleanup)
            raise

    async def _put(self, key: str, chunks: AsyncIterator[bytes], upload: _Upload, *,
                   max_bytes: int, content_type: str) -> StoredObject:
        client = self.client
        part_size = part_size_for(max_bytes, self.part_size)
        buffer = bytearray()
        parts: list[dict[str, Any]] = []
        # One part is sent while the next one is read from the client, so the upload takes about as long
        # as the slower side rather than the sum of both; memory stays about two parts.
        sending: asyncio.Future[dict[str, Any]] | None = None
        total = 0
        try:
            async for chunk in chunks:
                total += len(chunk)
                if total > max_bytes:
                    raise ObjectTooLarge(max_bytes)
                buffer += chunk
                if upload.upload_id is None and len(buffer) > self.multipart_threshold:
                    with self._remote("CreateMultipartUpload"):
                        created = await client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type)
                    upload.upload_id = created["UploadId"]
                # Parts are all exactly part_size (R2 requires equal parts but the last).
                while upload.upload_id is not None and len(buffer) >= part_size:
                    with memoryview(buffer) as view:
                        body = bytes(view[:part_size])
                    del buffer[:part_size]
                    if sending is not None:
                        parts.append(await sending)
                    sending = asyncio.ensure_future(self._upload_part(key, upload.upload_id, len(parts) + 1, body))
            if sending is not None:
                parts.append(await sending)
                sending = None
        finally:
            if sending is not None:
                # The reading side failed or was cancelled: stop the part in flight (and collect its
                # outcome) before the caller aborts the upload.
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)

        if upload.upload_id is None:
            upload.finishing = True
            with self._remote("PutObject"):
                await client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer), ContentType=content_type)
            return StoredObject(key=key, size=total)

        if buffer or not parts:
            parts.append(await self._upload_part(key, upload.upload_id, len(parts) + 1, bytes(buffer)))
        buffer.clear()
        upload.finishing = True
        with self._remote("CompleteMultipartUpload"):
            await client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload.upload_id, MultipartUpload={"Parts": parts})
        return StoredObject(key=key, size=total)

    async def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        with self._remote(f"UploadPart {number}"):
            answer = await self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def _discard(self, key: str, upload: _Upload) -> None:
        """Undo a failed put: abort the multipart upload, delete the object if it may exist. Never raises."""
        if upload.upload_id is not None:
            try:
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload.upload_id)
            except Exception as exc:  # noqa: BLE001 - best effort; the original error matters more
                if not upload.finishing:
                    log.warning("could not abort multipart upload %s of %s: %s", upload.upload_id, key, exc)
        if upload.finishing:
            try:
                await self.client.delete_object(Bucket=self.bucket, Key=key)
            except Exception as exc:  # noqa: BLE001
                log.warning("could not delete %s after a failed upload: %s", key, exc)

    async def download(self, key: str, *, filename: str, content_type: str) -> Download:
        """A presigned GET URL, valid ``presign_seconds``, that makes the browser save ``filename``.

        Presigning happens locally (no request to R2), so a missing key is not detected here: the URL
        answers 404. The core only asks for keys its database says exist.
        """
        url = await self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": content_disposition(filename),
                "ResponseContentType": content_type,
            },
            ExpiresIn=self.presign_seconds,
        )
        return Download(url=url)

    async def delete(self, key: str) -> None:
        """Delete the object; S3 answers success for a key that does not exist."""
        with self._remote("DeleteObject"):
            await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def health(self) -> Health:
        """HeadBucket within ``health_timeout`` seconds: ok, or down with the reason. Never raises."""
        try:
            await asyncio.wait_for(self._head_bucket(), self.health_timeout)
        except asyncio.TimeoutError:
            return Health.down(f"R2 bucket {self.bucket!r} at {self.endpoint_url} did not answer within {self.health_timeout:g}s")
        except ServiceUnavailable as exc:
            return Health.down(str(exc))
        except Exception as exc:  # noqa: BLE001 - health must never raise
            return Health.down(f"R2 health check failed: {exc!r}")
        return Health.ok(f"bucket {self.bucket!r} reachable")

    async def _head_bucket(self) -> None:
        with self._remote("HeadBucket"):
            await self.client.head_bucket(Bucket=self.bucket)
