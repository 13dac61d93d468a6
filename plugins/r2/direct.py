"""Direct uploads for R2Storage: the browser and the CLI PUT parts straight to the bucket.

The portal only creates the multipart upload, presigns one ``UploadPart`` URL per part (no request to R2:
presigning is local), lists what R2 holds, and completes or aborts. Mixed into :class:`R2Storage`, whose
client, bucket and error translation it uses.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from portal_core.interfaces import ObjectNotFound, PartLimits, PresignedPart, StoredPart, UploadNotFound

from .settings import MAX_PART_SIZE, MIN_PART_SIZE

MAX_PARTS = 10_000  # S3/R2 limit on parts per multipart upload.
READ_CHUNK = 1024 * 1024


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class R2DirectUploads:
    """The :class:`~portal_core.interfaces.DirectUploads` half of R2Storage."""

    # Parts per ListParts page; S3 and R2 answer at most 1,000 (a test lowers it to see the paging work).
    list_page_size = 1000

    client: Any
    bucket: str
    endpoint_url: str
    addressing_style: str
    part_size: int

    @property
    def part_limits(self) -> PartLimits:
        return PartLimits(min_size=MIN_PART_SIZE, max_size=MAX_PART_SIZE, max_parts=MAX_PARTS,
                          preferred_size=self.part_size)

    @property
    def upload_origins(self) -> tuple[str, ...]:
        """Where presigned part URLs point: the endpoint, or the bucket's own host with virtual addressing."""
        parts = urlsplit(self.endpoint_url)
        host = f"{self.bucket}.{parts.netloc}" if self.addressing_style == "virtual" else parts.netloc
        return (f"{parts.scheme}://{host}",)

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        with self._remote("CreateMultipartUpload"):
            answer = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return answer["UploadId"]

    async def presign_part(self, key: str, upload_id: str, number: int, *, expires_in: int) -> PresignedPart:
        url = await self.client.generate_presigned_url(
            "upload_part", Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
            ExpiresIn=expires_in)
        return PresignedPart(url=url, expires_at=time.time() + expires_in)

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        parts: list[StoredPart] = []
        marker = 0
        while True:
            try:
                with self._remote("ListParts"):
                    answer = await self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                          PartNumberMarker=marker, MaxParts=self.list_page_size)
            except Exception as exc:
                self._raise_missing_upload(exc, upload_id)
                raise
            parts += [StoredPart(number=int(p["PartNumber"]), etag=p["ETag"], size=int(p["Size"]))
                      for p in answer.get("Parts", [])]
            if not answer.get("IsTruncated"):
                return parts
            marker = int(answer["NextPartNumberMarker"])

    async def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        try:
            with self._remote("CompleteMultipartUpload"):
                await self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]})
        except Exception as exc:
            self._raise_missing_upload(exc, upload_id)
            raise

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            with self._remote("AbortMultipartUpload"):
                await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:
            try:
                self._raise_missing_upload(exc, upload_id)
            except UploadNotFound:
                return  # already gone: what was asked for
            raise

    async def read(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            return
        params = {}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            with self._remote("GetObject"):
                answer = await self.client.get_object(Bucket=self.bucket, Key=key, **params)
        except Exception as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause) in ("NoSuchKey", "404"):
                raise ObjectNotFound(key) from None
            if isinstance(cause, ClientError) and _code(cause) == "InvalidRange":
                return  # the range starts at or past the end (an empty object's head)
            raise
        body = answer["Body"]
        async with body:
            with self._remote("GetObject (reading)"):
                async for chunk in body.iter_chunks(READ_CHUNK):
                    yield chunk

    @staticmethod
    def _raise_missing_upload(exc: BaseException, upload_id: str) -> None:
        cause = exc.__cause__ if not isinstance(exc, ClientError) else exc
        if isinstance(cause, ClientError) and _code(cause) in ("NoSuchUpload", "404"):
            raise UploadNotFound(f"no multipart upload {upload_id}") from None
