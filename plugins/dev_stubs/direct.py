"""Direct uploads for LocalStorage, so DEV_MODE runs the same flow as R2: parts PUT to signed URLs.

The part URLs point at the portal itself (``PUT /dev/storage/parts/{upload id}/{n}``, a route this plugin
adds when the dev storage is selected) and carry an HMAC-SHA256 signature over the upload, the part number,
the key and the expiry, as a presigned S3 URL carries its SigV4 signature: no session, no cookie, no CSRF
token, and useless to anyone once expired. Parts are files under ``<root>/.uploads/<upload id>/`` (keys
never start with a dot, so they cannot meet), named ``<part number>.<md5>`` so one rename stores a part
and its ETag at once. Completing concatenates them into the object and removes the directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from portal_core import keys
from portal_core.interfaces import ObjectNotFound, PartLimits, PresignedPart, StoredPart, UploadNotFound
from portal_core.web.inputs import same_secret

MiB = 1024 * 1024
# The same limits as S3 and R2, so what works in DEV_MODE works in production.
LIMITS = PartLimits(min_size=5 * MiB, max_size=5 * 1024 * MiB, max_parts=10_000, preferred_size=8 * MiB)
PART_ROUTE = "/dev/storage/parts/{upload_id}/{number}"
READ_CHUNK = 256 * 1024
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"(\d+)\.([0-9a-f]{32})")
_UPLOADS = ".uploads"


class LocalDirectUploads:
    """The :class:`~portal_core.interfaces.DirectUploads` half of LocalStorage."""

    part_limits = LIMITS
    upload_origins: tuple[str, ...] = ()  # the portal's own origin: 'self' already allows it

    root: Path
    base_url: str
    secret: bytes

    def path_for(self, key: str) -> Path:  # provided by LocalStorage
        raise NotImplementedError

    # -- the protocol ------------------------------------------------------------------------------

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        self.path_for(key)  # refuses a key that is not a generated storage key
        upload_id = uuid.uuid4().hex
        folder = self._folder(upload_id)
        await asyncio.to_thread(folder.mkdir, parents=True)
        meta = json.dumps({"key": key, "content_type": content_type})
        await asyncio.to_thread((folder / "upload.json").write_text, meta)
        return upload_id

    async def presign_part(self, key: str, upload_id: str, number: int, *, expires_in: int) -> PresignedPart:
        expires = int(time.time()) + expires_in
        query = urlencode({"key": key, "expires": expires, "signature": self.sign(upload_id, number, key, expires)})
        path = PART_ROUTE.format(upload_id=upload_id, number=number)
        return PresignedPart(url=f"{self.base_url.rstrip('/')}{path}?{query}", expires_at=float(expires))

    async def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        folder = await self._existing(key, upload_id)
        return await asyncio.to_thread(_stored_parts, folder)

    async def complete_multipart(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        folder = await self._existing(key, upload_id)
        await asyncio.to_thread(self._join, folder, self.path_for(key), parts)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            folder = await self._existing(key, upload_id)
        except UploadNotFound:
            return
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)

    async def read(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        try:
            file = await asyncio.to_thread(open, self.path_for(key), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            await asyncio.to_thread(file.seek, start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                chunk = await asyncio.to_thread(file.read, READ_CHUNK if left is None else min(READ_CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk
        finally:
            file.close()

    # -- signing and receiving parts ---------------------------------------------------------------

    def sign(self, upload_id: str, number: int, key: str, expires: int) -> str:
        message = f"{upload_id}\n{number}\n{key}\n{expires}".encode("utf-8", "surrogateescape")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def check_signature(self, upload_id: str, number: int, key: str, expires: str, signature: str) -> str | None:
        """Why this part URL is not valid (to say in the 403), or None when it is."""
        if not expires.isdecimal() or not same_secret(signature, self.sign(upload_id, number, key, int(expires))):
            return "The request signature we calculated does not match the signature you provided"
        if int(expires) < time.time():
            return "Request has expired"
        return None

    async def receive_part(self, key: str, upload_id: str, number: int, body: AsyncIterator[bytes]) -> str:
        """Store one part from ``body`` (replacing an earlier copy of it); returns its ETag."""
        folder = await self._existing(key, upload_id)
        temp = folder / f".{number}.{uuid.uuid4().hex}.tmp"
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        file = await asyncio.to_thread(open, temp, "xb")
        try:
            async for chunk in body:
                size += len(chunk)
                if size > self.part_limits.max_size:
                    raise ValueError(f"a part may hold at most {self.part_limits.max_size} bytes")
                digest.update(chunk)
                await asyncio.to_thread(file.write, chunk)
            await asyncio.to_thread(file.close)
            final = folder / f"{number}.{digest.hexdigest()}"
            await asyncio.to_thread(os.replace, temp, final)
        except BaseException:
            file.close()
            temp.unlink(missing_ok=True)
            raise
        # An earlier copy of the same part with other bytes is replaced, as S3 does.
        for other in folder.glob(f"{number}.*"):
            if other != final and _PART_FILE.fullmatch(other.name):
                other.unlink(missing_ok=True)
        return f'"{digest.hexdigest()}"'

    # -- internals ---------------------------------------------------------------------------------

    def _folder(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(f"no multipart upload {upload_id!r}")
        return self.root / _UPLOADS / upload_id

    async def _existing(self, key: str, upload_id: str) -> Path:
        folder = self._folder(upload_id)
        try:
            meta = json.loads(await asyncio.to_thread((folder / "upload.json").read_text))
        except (FileNotFoundError, ValueError):
            raise UploadNotFound(f"no multipart upload {upload_id}") from None
        if meta.get("key") != key:
            raise UploadNotFound(f"no multipart upload {upload_id} for {key}")
        return folder

    @staticmethod
    def _join(folder: Path, final: Path, parts: list[StoredPart]) -> None:
        files = {part.number: path for part, path in ((p, _part_path(folder, p)) for p in parts)}
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        try:
            with open(temp, "xb") as out:
                for part in parts:
                    with open(files[part.number], "rb") as source:
                        shutil.copyfileobj(source, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)


def _part_path(folder: Path, part: StoredPart) -> Path:
    digest = part.etag.strip('"')
    path = folder / f"{part.number}.{digest}"
    if not path.exists():
        raise UploadNotFound(f"part {part.number} with ETag {part.etag} is not stored")
    return path


def _stored_parts(folder: Path) -> list[StoredPart]:
    parts = []
    for entry in folder.iterdir():
        match = _PART_FILE.fullmatch(entry.name)
        if match:
            parts.append(StoredPart(number=int(match.group(1)), etag=f'"{match.group(2)}"', size=entry.stat().st_size))
    return sorted(parts, key=lambda part: part.number)


def _s3_error(status: int, code: str, message: str) -> web.Response:
    # Shaped like S3's answers, so clients written for S3 (Uppy re-signs on "Request has expired") understand.
    body = f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=body, content_type="application/xml")


async def put_part(request: web.Request) -> web.Response:
    """PUT /dev/storage/parts/{upload id}/{n}?key=&expires=&signature=: one part, authorized by its signature."""
    storage = request.app[keys.STORAGE]
    if not isinstance(storage, LocalDirectUploads):
        return _s3_error(404, "NoSuchUpload", "the selected storage does not take parts here")
    upload_id = request.match_info["upload_id"]
    raw_number = request.match_info["number"]
    key = request.query.get("key", "")
    if not raw_number.isdecimal() or not 1 <= int(raw_number) <= storage.part_limits.max_parts:
        return _s3_error(400, "InvalidArgument", f"Part number must be an integer between 1 and {storage.part_limits.max_parts}")
    number = int(raw_number)
    problem = storage.check_signature(upload_id, number, key, request.query.get("expires", ""),
                                      request.query.get("signature", ""))
    if problem:
        return _s3_error(403, "AccessDenied", problem)
    try:
        etag = await storage.receive_part(key, upload_id, number, request.content.iter_chunked(READ_CHUNK))
    except UploadNotFound:
        return _s3_error(404, "NoSuchUpload", "The specified multipart upload does not exist")
    except ValueError as exc:
        return _s3_error(400, "EntityTooLarge", str(exc))
    return web.Response(status=200, headers={"ETag": etag})


def part_routes() -> list[web.RouteDef]:
    return [web.put(PART_ROUTE, put_part)]
