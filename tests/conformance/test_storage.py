"""The same storage cases for every implementation: LocalStorage (DEV_MODE) and R2Storage (moto).

A case here is what the portal relies on whichever backend runs: bytes come back unchanged, limits
hold to the byte, and a failed, oversized or abandoned upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from portal_core.interfaces import ObjectTooLarge, Storage, StoredObject

MiB = 1024 * 1024
BIG = 12 * MiB  # above R2's multipart threshold: exercises parts, not just PutObject


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``data`` the way an upload arrives: in chunks, with a pause between them."""
    for start in range(0, len(data), size):
        yield data[start:start + size]
        await asyncio.sleep(0)


async def put(storage: Storage, key: str, data: bytes, *, max_bytes: int | None = None) -> StoredObject:
    return await storage.put(key, chunked(data), max_bytes=len(data) if max_bytes is None else max_bytes,
                             content_type="application/octet-stream")


def test_every_harness_storage_is_a_storage(harness) -> None:
    assert isinstance(harness.storage, Storage)


@pytest.mark.parametrize("size", [0, 1, 5000, BIG], ids=["empty", "1B", "5kB", "12MiB"])
async def test_round_trip_keeps_every_byte(harness, size: int) -> None:
    data = os.urandom(size)
    stored = await put(harness.storage, "7/round-trip", data, max_bytes=BIG)
    assert stored == StoredObject(key="7/round-trip", size=size)
    assert await harness.fetch("7/round-trip") == data
    assert await harness.leftovers() == ["7/round-trip"]


async def test_odd_chunk_sizes_round_trip(harness) -> None:
    data = os.urandom(BIG + 12345)
    stored = await harness.storage.put("7/odd", chunked(data, size=333_333), max_bytes=len(data),
                                       content_type="application/octet-stream")
    assert stored.size == len(data)
    assert await harness.fetch("7/odd") == data


@pytest.mark.parametrize("size", [1000, BIG], ids=["small", "multipart"])
async def test_exactly_max_bytes_is_accepted(harness, size: int) -> None:
    data = os.urandom(size)
    assert (await put(harness.storage, "7/exact", data, max_bytes=size)).size == size
    assert await harness.fetch("7/exact") == data


@pytest.mark.parametrize("size", [1000, BIG], ids=["small", "multipart"])
async def test_one_byte_over_max_bytes_is_refused_and_nothing_is_kept(harness, size: int) -> None:
    with pytest.raises(ObjectTooLarge) as caught:
        await put(harness.storage, "7/too-big", os.urandom(size + 1), max_bytes=size)
    assert caught.value.limit == size
    assert await harness.leftovers() == []
    assert await harness.fetch("7/too-big") is None


async def test_too_large_is_raised_without_reading_the_whole_body(harness) -> None:
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        while True:
            read += 64 * 1024
            yield b"x" * (64 * 1024)

    with pytest.raises(ObjectTooLarge):
        await harness.storage.put("7/endless", endless(), max_bytes=BIG, content_type="text/plain")
    assert read <= BIG + 64 * 1024
    assert await harness.leftovers() == []


async def test_iterator_failing_midway_leaves_nothing(harness) -> None:
    async def disconnecting() -> AsyncIterator[bytes]:
        async for chunk in chunked(os.urandom(BIG)):
            yield chunk
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError, match="client went away"):
        await harness.storage.put("7/disconnect", disconnecting(), max_bytes=10 * BIG, content_type="text/plain")
    assert await harness.leftovers() == []


async def test_cancelled_upload_leaves_nothing(harness) -> None:
    stalled = asyncio.Event()

    async def stalling() -> AsyncIterator[bytes]:
        async for chunk in chunked(os.urandom(BIG)):
            yield chunk
        # Asked for more: everything before has been consumed (for R2, a part was sent).
        stalled.set()
        await asyncio.Event().wait()
        yield b""  # never reached

    task = asyncio.create_task(
        harness.storage.put("7/cancelled", stalling(), max_bytes=10 * BIG, content_type="text/plain"))
    await asyncio.wait_for(stalled.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await harness.leftovers() == []


async def test_deleted_object_is_gone(harness) -> None:
    await put(harness.storage, "7/deleted", b"bytes to forget")
    await harness.storage.delete("7/deleted")
    assert await harness.fetch("7/deleted") is None
    assert await harness.leftovers() == []


async def test_deleting_a_missing_key_is_fine(harness) -> None:
    await harness.storage.delete("7/never-stored")
    assert await harness.leftovers() == []


async def test_other_objects_survive_a_delete(harness) -> None:
    await put(harness.storage, "7/keep", b"keep me")
    await put(harness.storage, "7/drop", b"drop me")
    await harness.storage.delete("7/drop")
    assert await harness.fetch("7/keep") == b"keep me"
    assert await harness.leftovers() == ["7/keep"]


async def test_a_failed_upload_keeps_an_existing_object(harness) -> None:
    await put(harness.storage, "7/first", b"first")
    with pytest.raises(ObjectTooLarge):
        await put(harness.storage, "7/second", os.urandom(2000), max_bytes=1000)
    assert await harness.fetch("7/first") == b"first"
    assert await harness.leftovers() == ["7/first"]


async def test_health_is_ok(harness) -> None:
    health = await harness.storage.health()
    assert health.status == "ok", health.detail


async def test_health_is_down_when_storage_is_unreachable(harness) -> None:
    async with harness.unavailable() as storage:
        health = await storage.health()
    assert health.status == "down"
    assert health.detail
