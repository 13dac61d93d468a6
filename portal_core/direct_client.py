"""A client of the portal's direct-upload protocol (/api/s3), as `portal upload` and the tests use it.

``upload_file`` sends one file: it starts an upload (or resumes the one a state file remembers, after asking
the portal which parts storage already holds), PUTs the missing parts to their presigned URLs in parallel
(retrying a failed part, asking for a fresh URL when one expired), hashes the file meanwhile in a worker
thread, and completes with the SHA-256 so the portal can verify what storage holds. The API token goes to
the portal only, never to storage: part URLs carry their own signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import mimetypes
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import attrs

READ_CHUNK = 1024 * 1024
PART_ATTEMPTS = 4
# Part URLs are asked for this many at a time (one portal round trip instead of one per part).
SIGN_AHEAD = 16


class PortalError(Exception):
    """The portal (or storage) refused or failed: ``status`` (0 when unreachable), ``code`` and a sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@attrs.define
class Resume:
    """What a state file remembers about an upload under way."""

    key: str
    upload_id: str
    part_size: int


class DirectClient:
    """The /api/s3 calls, on an aiohttp session; ``headers`` authenticate to the portal (a bearer token).
    ``endpoint``: where the protocol lives (Uppy's option of that name): ``/api``, or a file request's
    ``/api/r/<token>`` for someone without an account."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, headers: Mapping[str, str],
                 endpoint: str = "/api") -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.multipart = endpoint.rstrip("/") + "/s3/multipart"

    async def call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                   body: Any = None) -> Any:
        url = self.base_url + path
        try:
            async with self.session.request(method, url, params=params, json=body, headers=self.headers,
                                            allow_redirects=False) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise PortalError(0, "unreachable", f"cannot reach the portal at {self.base_url}: {exc or type(exc).__name__}") from None
        try:
            answer = json.loads(text) if text else None
        except ValueError:
            answer = None
        if status >= 400:
            error = answer.get("error") if isinstance(answer, dict) and isinstance(answer.get("error"), dict) else {}
            raise PortalError(status, str(error.get("code", f"http_{status}")),
                              str(error.get("message") or f"{method} {path} answered HTTP {status}"))
        if answer is None and text:
            raise PortalError(status, "bad_response", f"{method} {path} did not answer JSON (is {self.base_url} a portal?)")
        return answer

    async def create(self, name: str, size: int, content_type: str, sha256: str | None = None) -> dict:
        metadata: dict[str, Any] = {"size": size}
        if sha256:
            metadata["sha256"] = sha256
        return await self.call("POST", self.multipart, body={"filename": name, "type": content_type,
                                                                   "metadata": metadata})

    async def sign(self, upload_id: str, key: str, number: int) -> str:
        answer = await self.call("GET", f"{self.multipart}/{_quote(upload_id)}/{number}", params={"key": key})
        return answer["url"]

    async def sign_batch(self, upload_id: str, key: str, numbers: list[int]) -> dict[int, str]:
        answer = await self.call("GET", f"{self.multipart}/{_quote(upload_id)}/batch",
                                 params={"key": key, "partNumbers": ",".join(map(str, numbers))})
        return {int(n): url for n, url in answer["presignedUrls"].items()}

    async def list_parts(self, upload_id: str, key: str) -> list[dict]:
        return await self.call("GET", f"{self.multipart}/{_quote(upload_id)}", params={"key": key})

    async def complete(self, upload_id: str, key: str, parts: Mapping[int, str], sha256: str | None = None) -> dict:
        body: dict[str, Any] = {"parts": [{"PartNumber": n, "ETag": parts[n]} for n in sorted(parts)]}
        if sha256:
            body["sha256"] = sha256
        return await self.call("POST", f"{self.multipart}/{_quote(upload_id)}/complete", params={"key": key},
                               body=body)

    async def abort(self, upload_id: str, key: str) -> None:
        await self.call("DELETE", f"{self.multipart}/{_quote(upload_id)}", params={"key": key})

    async def put_part(self, url: str, data: bytes) -> str:
        """PUT one part to its presigned URL (no portal credentials); returns the ETag storage answered."""
        try:
            async with self.session.put(url, data=data, headers={"Content-Type": "application/octet-stream"}) as response:
                text = await response.text()
                if response.status != 200:
                    raise PortalError(response.status, "storage_refused",
                                      f"storage answered {response.status} to a part: {_s3_message(text)}")
                etag = response.headers.get("ETag")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise PortalError(0, "storage_unreachable", f"cannot reach storage: {exc or type(exc).__name__}") from None
        if not etag:
            raise PortalError(200, "no_etag", "storage gave no ETag for a part (the bucket's CORS rule must expose ETag)")
        return etag


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _s3_message(text: str) -> str:
    start, end = text.find("<Message>"), text.find("</Message>")
    return text[start + 9:end] if 0 <= start < end else (text[:200] or "no details")


def part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as file:
        return os.pread(file.fileno(), length, offset)


async def upload_file(client: DirectClient, path: Path, *, parallel: int = 4, resume: Resume | None = None,
                      remember: Callable[[Resume | None], None] = lambda _r: None,
                      progress: Callable[[int, int], None] = lambda _done, _total: None,
                      name: str | None = None, sha256: str | None = None) -> dict:
    """Upload ``path`` through the direct protocol and return the portal's completion answer ({location, key,
    artifact}). ``resume`` continues an earlier upload of the same file; ``remember`` is told the upload to
    resume (at its start) and None once it is complete; ``progress(done, total)`` follows the bytes stored.
    The file's SHA-256 is computed while the parts go up, unless ``sha256`` already gives it."""
    size = path.stat().st_size
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    hashing = asyncio.ensure_future(asyncio.to_thread(sha256_of, path) if sha256 is None else _known(sha256))
    try:
        done: dict[int, str] = {}
        if resume is not None:
            try:
                listed = await client.list_parts(resume.upload_id, resume.key)
            except PortalError as exc:
                if exc.status != 404:
                    raise
                resume = None  # expired or aborted meanwhile: start again
            else:
                done = {p["PartNumber"]: p["ETag"] for p in listed
                        if p["Size"] == _expected(size, resume.part_size, p["PartNumber"])}
        if resume is None:
            created = await client.create(name or path.name, size, content_type)
            resume = Resume(created["key"], created["uploadId"], int(created["partSize"]))
            remember(resume)
        total_parts = part_count(size, resume.part_size)
        done = {n: etag for n, etag in done.items() if n <= total_parts}
        sent = sum(_expected(size, resume.part_size, n) for n in done)
        progress(sent, size)
        todo = [number for number in range(1, total_parts + 1) if number not in done]
        urls = _Urls(client, resume, list(todo))

        async def worker() -> None:
            nonlocal sent
            while todo:
                number = todo.pop(0)
                offset = (number - 1) * resume.part_size
                data = await asyncio.to_thread(_read, path, offset, _expected(size, resume.part_size, number))
                done[number] = await _send_part(client, urls, number, data)
                sent += len(data)
                progress(sent, size)

        workers = [asyncio.ensure_future(worker()) for _ in range(max(1, parallel))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        answer = await client.complete(resume.upload_id, resume.key, done, sha256=await hashing)
        remember(None)
        return answer
    finally:
        if not hashing.done():
            hashing.cancel()


async def _known(sha256: str) -> str:
    return sha256


def _expected(size: int, part_size: int, number: int) -> int:
    """How many bytes part ``number`` of a ``size``-byte file holds."""
    return max(0, min(part_size, size - (number - 1) * part_size))


class _Urls:
    """Part URLs signed ahead, SIGN_AHEAD at a time, in the order the parts will be sent."""

    def __init__(self, client: DirectClient, upload: Resume, order: list[int]) -> None:
        self.client = client
        self.upload = upload
        self.order = order
        self.signed: dict[int, str] = {}
        self.lock = asyncio.Lock()

    async def get(self, number: int) -> str:
        async with self.lock:
            if number not in self.signed:
                at = self.order.index(number) if number in self.order else 0
                batch = [number] + [n for n in self.order[at + 1:at + SIGN_AHEAD] if n not in self.signed]
                self.signed.update(await self.client.sign_batch(self.upload.upload_id, self.upload.key, batch))
            return self.signed.pop(number)

    async def fresh(self, number: int) -> str:
        self.signed.pop(number, None)
        return await self.client.sign(self.upload.upload_id, self.upload.key, number)


async def _send_part(client: DirectClient, urls: _Urls, number: int, data: bytes) -> str:
    """PUT one part, asking for a fresh URL and retrying with backoff when storage fails or the URL expired."""
    url = await urls.get(number)
    for attempt in range(1, PART_ATTEMPTS + 1):
        try:
            return await client.put_part(url, data)
        except PortalError as exc:
            retriable = exc.status in (0, 403, 408, 429) or exc.status >= 500
            if not retriable or attempt == PART_ATTEMPTS:
                raise
            await asyncio.sleep(0.5 * 2 ** (attempt - 1))
            url = await urls.fresh(number)
    raise AssertionError("unreachable")
