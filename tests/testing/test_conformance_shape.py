"""assert_implements (portal_core.testing.conformance.shape): the conformance suites' first case checks an
implementation's signatures against the Protocol, which ``isinstance`` on a runtime-checkable Protocol
does not (it only sees that the names exist)."""

from __future__ import annotations

import pytest

from portal_core.interfaces import DirectUploads, Health, Storage, StoredObject
from portal_core.testing.conformance.shape import assert_implements, implementation_problems


class GoodStorage:
    name = "good"

    async def put(self, key, chunks, *, max_bytes, content_type, extra=None) -> StoredObject:
        return StoredObject(key, 0)

    async def download(self, key, **options):
        raise NotImplementedError

    async def delete(self, key) -> None:
        return None

    async def health(self) -> Health:
        return Health.ok("fine")


class SyncPut(GoodStorage):
    def put(self, key, chunks, *, max_bytes, content_type):  # not async
        return StoredObject(key, 0)


class RenamedLimit(GoodStorage):
    async def put(self, key, chunks, *, limit, content_type):  # the portal passes max_bytes=
        return StoredObject(key, 0)


class PositionalLimit(GoodStorage):
    async def put(self, key, chunks, max_bytes, content_type, /):  # the portal passes them by keyword
        return StoredObject(key, 0)


class NeedsMore(GoodStorage):
    async def delete(self, key, reason) -> None:  # nobody passes a reason
        return None


class NumberName(GoodStorage):
    name = 7


class KeyFirstSwapped(GoodStorage):
    async def put(self, chunks, key, *, max_bytes, content_type):
        return StoredObject(key, 0)


def test_a_matching_implementation_passes_with_optional_extras_and_kwargs():
    assert implementation_problems(GoodStorage(), Storage) == []
    assert_implements(GoodStorage(), Storage)


@pytest.mark.parametrize("cls, problem", [
    (SyncPut, "put must be an async def"),
    (RenamedLimit, "put does not take the keyword argument 'max_bytes'"),
    (PositionalLimit, "'max_bytes' is positional-only"),
    (NeedsMore, "delete requires 'reason'"),
    (NumberName, "name is 7, not a <class 'str'>"),
    (KeyFirstSwapped, "positional parameter 1 is 'chunks'"),
])
def test_a_wrong_shape_is_named_though_isinstance_lets_it_through(cls, problem):
    storage = cls()
    assert isinstance(storage, Storage)  # what the suites used to check, and why it was not enough
    with pytest.raises(AssertionError) as failed:
        assert_implements(storage, Storage)
    assert problem in str(failed.value)


def test_missing_members_and_a_plain_def_made_async_are_named():
    class Half(GoodStorage):
        part_limits = None
        upload_origins = ["http://x"]  # a list, not the tuple[str, ...] promised

        async def read(self, key, *, start=0, end=None):  # a coroutine, where an async iterator is promised
            return b""

    problems = implementation_problems(Half(), DirectUploads)
    assert "create_multipart is missing" in problems
    assert "read must be a plain def (not async)" in problems
    assert any(p.startswith("upload_origins is ['http://x']") for p in problems)
    assert any(p.startswith("part_limits is None") for p in problems)
