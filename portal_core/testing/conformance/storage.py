"""StorageConformance: what the portal relies on from every :class:`~portal_core.interfaces.Storage`.

Bytes come back unchanged, limits hold to the byte, and a failed, oversized or abandoned upload leaves
nothing behind. Subclass it in a test module and provide the fixtures; pytest runs every case::

    from portal_core.testing import StorageConformance

    class TestDiskStorage(StorageConformance):
        @pytest.fixture
        def storage(self, tmp_path):
            return DiskStorage(tmp_path / "objects")             # empty

        @pytest.fixture
        def unreachable_storage(self, tmp_path):
            return DiskStorage(tmp_path / "a-file" / "objects")  # cannot store anything: health says down

Override :meth:`~StorageConformance.leftovers` when your backend can list what it holds (objects, temporary
files, pending multipart uploads): the cases then check that nothing at all is left, not only that the
key they used is gone. Override :meth:`~StorageConformance.fetch` when a missing object's URL does not
answer 404.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from portal_core.interfaces import ObjectNotFound, ObjectTooLarge, Storage, StoredObject
from portal_core.testing.conformance.shape import assert_implements

MiB = 1024 * 1024


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``data`` the way an upload arrives: in chunks, with a pause between them."""
    for start in range(0, len(data), size):
        yield data[start:start + size]
        await asyncio.sleep(0)


@pytest.mark.asyncio
class StorageConformance:
    """The storage cases. Provide ``storage`` (an empty Storage) and ``unreachable_storage`` fixtures."""

    #: Large enough to need multipart uploads on S3-like stores (R2's threshold is below it).
    big = 12 * MiB

    # -- what a subclass provides or may refine ------------------------------------------------------

    @pytest.fixture
    def unreachable_storage(self) -> Storage:
        pytest.fail("StorageConformance needs an `unreachable_storage` fixture: a storage of the same kind that "
                    "cannot reach where it keeps objects (a closed port, a path under a file)", pytrace=False)

    async def fetch(self, storage: Storage, key: str) -> bytes | None:
        """The object's bytes as a customer's download gets them, or None when nothing is stored under ``key``."""
        try:
            download = await storage.download(key, filename="a.bin", content_type="application/octet-stream")
        except ObjectNotFound:
            return None
        assert (download.url is None) != (download.stream is None), "a Download carries exactly one of url and stream"
        if download.stream is not None:
            body = b"".join([chunk async for chunk in download.stream])
            assert download.size == len(body), f"the Download said {download.size} bytes and streamed {len(body)}"
            return body
        async with aiohttp.ClientSession() as http, http.get(download.url) as response:
            if response.status == 200:
                return await response.read()
            assert response.status == 404, (f"{key}: its download URL answered {response.status} "
                                            f"({(await response.text())[:200]}); override fetch() to tell a "
                                            "missing object from an error on this backend")
            return None

    async def leftovers(self, storage: Storage) -> list[str] | None:
        """Everything the backend holds, as sorted names (keys, temp files, pending uploads), or None when it
        cannot be listed — then the cases check only that the keys they used hold what they should."""
        return None

    # -- helpers -------------------------------------------------------------------------------------

    async def put(self, storage: Storage, key: str, data: bytes, *, max_bytes: int | None = None) -> StoredObject:
        return await storage.put(key, chunked(data), max_bytes=len(data) if max_bytes is None else max_bytes,
                                 content_type="application/octet-stream")

    async def assert_holds(self, storage: Storage, kept: list[str], gone: list[str]) -> None:
        """Exactly ``kept`` is stored (when the backend can be listed), and nothing under ``gone``."""
        listing = await self.leftovers(storage)
        if listing is not None:
            assert listing == sorted(kept), f"the storage holds {listing}, expected {sorted(kept)}"
        for key in gone:
            assert await self.fetch(storage, key) is None, f"something is still stored under {key!r}"

    # -- the cases -----------------------------------------------------------------------------------

    async def test_is_a_storage(self, storage) -> None:
        assert_implements(storage, Storage)
        assert isinstance(storage.name, str) and storage.name

    @pytest.mark.parametrize("size", [0, 1, 5000, "big"], ids=["empty", "1B", "5kB", "big"])
    async def test_round_trip_keeps_every_byte(self, storage, size) -> None:
        size = self.big if size == "big" else size
        data = os.urandom(size)
        stored = await self.put(storage, "7/round-trip", data, max_bytes=self.big)
        assert stored == StoredObject(key="7/round-trip", size=size)
        assert await self.fetch(storage, "7/round-trip") == data
        await self.assert_holds(storage, ["7/round-trip"], [])

    async def test_odd_chunk_sizes_round_trip(self, storage) -> None:
        data = os.urandom(self.big + 12345)
        stored = await storage.put("7/odd", chunked(data, size=333_333), max_bytes=len(data),
                                   content_type="application/octet-stream")
        assert stored.size == len(data)
        assert await self.fetch(storage, "7/odd") == data

    @pytest.mark.parametrize("size", [1000, "big"], ids=["small", "multipart"])
    async def test_exactly_max_bytes_is_accepted(self, storage, size) -> None:
        size = self.big if size == "big" else size
        data = os.urandom(size)
        assert (await self.put(storage, "7/exact", data, max_bytes=size)).size == size
        assert await self.fetch(storage, "7/exact") == data

    @pytest.mark.parametrize("size", [1000, "big"], ids=["small", "multipart"])
    async def test_one_byte_over_max_bytes_is_refused_and_nothing_is_kept(self, storage, size) -> None:
        size = self.big if size == "big" else size
        with pytest.raises(ObjectTooLarge) as caught:
            await self.put(storage, "7/too-big", os.urandom(size + 1), max_bytes=size)
        assert caught.value.limit == size
        await self.assert_holds(storage, [], ["7/too-big"])

    async def test_too_large_is_raised_without_reading_the_whole_body(self, storage) -> None:
        read = 0

        async def endless() -> AsyncIterator[bytes]:
            nonlocal read
            while True:
                read += 64 * 1024
                yield b"x" * (64 * 1024)

        with pytest.raises(ObjectTooLarge):
            await storage.put("7/endless", endless(), max_bytes=self.big, content_type="text/plain")
        assert read <= self.big + 64 * 1024, f"read {read} bytes of a body limited to {self.big}"
        await self.assert_holds(storage, [], ["7/endless"])

    async def test_iterator_failing_midway_leaves_nothing(self, storage) -> None:
        async def disconnecting() -> AsyncIterator[bytes]:
            async for chunk in chunked(os.urandom(self.big)):
                yield chunk
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError, match="client went away"):
            await storage.put("7/disconnect", disconnecting(), max_bytes=10 * self.big, content_type="text/plain")
        await self.assert_holds(storage, [], ["7/disconnect"])

    async def test_cancelled_upload_leaves_nothing(self, storage) -> None:
        stalled = asyncio.Event()

        async def stalling() -> AsyncIterator[bytes]:
            async for chunk in chunked(os.urandom(self.big)):
                yield chunk
            # Asked for more: everything before has been consumed (for R2, a part was sent).
            stalled.set()
            await asyncio.Event().wait()
            yield b""  # never reached

        task = asyncio.create_task(
            storage.put("7/cancelled", stalling(), max_bytes=10 * self.big, content_type="text/plain"))
        await asyncio.wait_for(stalled.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await self.assert_holds(storage, [], ["7/cancelled"])

    async def test_deleted_object_is_gone(self, storage) -> None:
        await self.put(storage, "7/deleted", b"bytes to forget")
        await storage.delete("7/deleted")
        await self.assert_holds(storage, [], ["7/deleted"])

    async def test_deleting_a_missing_key_is_fine(self, storage) -> None:
        await storage.delete("7/never-stored")
        await self.assert_holds(storage, [], ["7/never-stored"])

    async def test_other_objects_survive_a_delete(self, storage) -> None:
        await self.put(storage, "7/keep", b"keep me")
        await self.put(storage, "7/drop", b"drop me")
        await storage.delete("7/drop")
        assert await self.fetch(storage, "7/keep") == b"keep me"
        await self.assert_holds(storage, ["7/keep"], ["7/drop"])

    async def test_a_failed_upload_keeps_an_existing_object(self, storage) -> None:
        await self.put(storage, "7/first", b"first")
        with pytest.raises(ObjectTooLarge):
            await self.put(storage, "7/second", os.urandom(2000), max_bytes=1000)
        assert await self.fetch(storage, "7/first") == b"first"
        await self.assert_holds(storage, ["7/first"], ["7/second"])

    async def test_health_is_ok(self, storage) -> None:
        health = await storage.health()
        assert health.status == "ok", health.detail

    async def test_health_is_down_when_storage_is_unreachable(self, unreachable_storage) -> None:
        health = await unreachable_storage.health()
        assert health.status == "down"
        assert health.detail, "a storage that is down says why"
