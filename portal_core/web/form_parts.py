"""Reading a multipart/form-data body part by part, trusting none of its framing.

A file counts only when all of it AND the boundary after it arrived: a body cut off inside a part, or
after it but before the next boundary (for the last file: the closing one), is a 400 while the file is
still streaming, so the storage discards what it had and no row is written. Framing aiohttp cannot read
— no boundary, garbage or over-long part headers, a missing starting boundary — is a 400 too, never a 500.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .errors import bad_request

CHUNK = 512 * 1024
_UNREAD = object()


@contextlib.contextmanager
def framing() -> Iterator[None]:
    """Turn what aiohttp's multipart reader raises for a malformed or truncated body into a 400."""
    try:
        yield
    except (ValueError, UnicodeError, HttpProcessingError, AssertionError) as exc:
        text = str(getattr(exc, "message", exc)).strip()
        detail = text.splitlines()[0][:200] if text else type(exc).__name__
        raise bad_request(f"the multipart body is malformed or was cut off ({detail}); nothing from it was stored",
                          code="bad_multipart") from None


class FileParts:
    """The 'file' parts of a form (other fields are skipped): ``while (part := await form.next_file()) ...``,
    streaming each with :meth:`chunks`."""

    def __init__(self, reader) -> None:
        """``reader``: aiohttp's ``MultipartReader`` (None for a lone part: only its own boundary is awaited)."""
        self._reader = reader
        self._next = _UNREAD

    @classmethod
    async def of(cls, request: web.Request) -> FileParts:
        """The request's form; 400 unless it is multipart/form-data with a boundary aiohttp accepts."""
        if not request.content_type.startswith("multipart/form-data"):
            raise bad_request("send the file as multipart/form-data with a 'file' field (curl -F file=@path)")
        with framing():
            return cls(await request.multipart())

    async def next_file(self):
        """The form's next 'file' part, or None when the closing boundary came first."""
        with framing():
            part = await self._reader.next() if self._next is _UNREAD else self._next
            self._next = _UNREAD
            while part is not None and part.name != "file":
                await part.release()
                part = await self._reader.next()
        return part

    async def chunks(self, part, first: bytes = b"", *, whole_form: bool = False) -> AsyncIterator[bytes]:
        """``first`` (bytes already read from ``part``), then the rest of the part; the iteration ends only
        once the boundary after the part arrived — with ``whole_form``, only once the rest of the form did,
        up to its closing boundary. Otherwise it raises a 400 before it ends."""
        if first:
            yield first
        with framing():
            while chunk := await part.read_chunk(CHUNK):
                yield chunk
            if not part.at_eof():
                raise ValueError("the file part ended before its boundary")
            self._next = await self._reader.next() if self._reader is not None else None
            while whole_form and self._next is not None:
                await self._next.release()
                self._next = await self._reader.next()


async def read_head(part, size: int) -> bytes:
    """The part's first ``size`` bytes (fewer when it is shorter), read before anything is stored."""
    head = b""
    with framing():
        # Never ask for less than a boundary's length: aiohttp needs that much to tell data from boundary.
        while len(head) < size and (chunk := await part.read_chunk(max(size - len(head), 256))):
            head += chunk
    return head
