"""The kit from the outside: a plugin author's test suite, run by pytest in a subprocess (pytester).

It proves the conformance suites catch what they promise to catch — a storage that leaves a partial
object behind fails them, the same storage cleaning up passes — in pytest-asyncio's strict mode (a plugin
project's default), and that the kit's databases are dropped after each test.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile

import psycopg2
import pytest

AUTHORS_SUITE = '''
import os
from pathlib import Path

import pytest

from portal_core.interfaces import Download, Health, ObjectNotFound, ObjectTooLarge, StoredObject
from portal_core.testing import StorageConformance, signed_in


class FileStorage:
    """Files under a directory; ``tidy=False`` writes straight into place and never cleans up."""

    name = "files"

    def __init__(self, root, tidy):
        self.root, self.tidy = Path(root), tidy

    async def put(self, key, chunks, *, max_bytes, content_type):
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        try:
            with open(path, "wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise ObjectTooLarge(max_bytes)
                    handle.write(chunk)
        except BaseException:
            if self.tidy:
                path.unlink(missing_ok=True)
            raise
        return StoredObject(key, size)

    async def download(self, key, *, filename, content_type):
        path = self.root / key
        if not path.is_file():
            raise ObjectNotFound(key)
        data = path.read_bytes()

        async def stream():
            yield data

        return Download(stream=stream(), size=len(data))

    async def delete(self, key):
        (self.root / key).unlink(missing_ok=True)

    async def health(self):
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return Health.down(str(exc))
        return Health.ok()


class Files(StorageConformance):
    big = 256 * 1024  # quick: nothing here is multipart
    tidy = True

    @pytest.fixture
    def storage(self, tmp_path):
        return FileStorage(tmp_path / "objects", self.tidy)

    @pytest.fixture
    def unreachable_storage(self, tmp_path):
        (tmp_path / "a-file").write_bytes(b"")
        return FileStorage(tmp_path / "a-file" / "objects", self.tidy)


class TestTidy(Files):
    pass


class TestLeaky(Files):
    tidy = False


@pytest.mark.asyncio
async def test_a_portal_on_a_database_of_its_own(portal_client, portal_db):
    Path(os.environ["DB_NOTE"]).write_text(portal_db)
    ada = await signed_in(portal_client, "ada@example.com")
    assert (await ada.upload(b"hello", "hello.txt")).status == 201
'''

LEAVES_SOMETHING = ["test_one_byte_over_max_bytes_is_refused_and_nothing_is_kept[small]",
                    "test_one_byte_over_max_bytes_is_refused_and_nothing_is_kept[multipart]",
                    "test_too_large_is_raised_without_reading_the_whole_body",
                    "test_iterator_failing_midway_leaves_nothing",
                    "test_cancelled_upload_leaves_nothing",
                    "test_a_failed_upload_keeps_an_existing_object"]


def test_a_storage_leaving_a_partial_object_fails_the_suite_and_a_tidy_one_passes(pytester, monkeypatch, tmp_path):
    pytester.makepyfile(test_authors_suite=AUTHORS_SUITE)
    note = tmp_path / "db.txt"
    monkeypatch.setenv("DB_NOTE", str(note))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "asyncio_mode=strict", "-rf")
    failed = sorted(re.findall(r"^FAILED test_authors_suite.py::(\S+)", result.stdout.str(), re.M))
    assert failed == sorted(f"TestLeaky::{name}" for name in LEAVES_SOMETHING), result.stdout.str()
    assert "something is still stored under '7/too-big'" in result.stdout.str()
    passed = 2 * 19 + 1 - len(LEAVES_SOMETHING)  # every case of both classes, and the portal test
    result.assert_outcomes(passed=passed, failed=len(LEAVES_SOMETHING))
    # The portal test's database is gone once the test is over.
    name = note.read_text().rsplit("/", 1)[-1].split("?")[0]
    conn = psycopg2.connect(os.environ["PORTAL_TEST_DATABASE_URL"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
            assert cur.fetchone() == (0,)
    finally:
        conn.close()


@pytest.mark.slow
def test_without_a_server_the_kit_starts_a_throwaway_postgresql_and_removes_it(pytester, monkeypatch, tmp_path):
    pytester.makepyfile(test_authors_suite=AUTHORS_SUITE)
    monkeypatch.setenv("DB_NOTE", str(tmp_path / "db.txt"))
    monkeypatch.delenv("PORTAL_TEST_DATABASE_URL")
    clusters = set(glob.glob(os.path.join(tempfile.gettempdir(), "portal-dev-postgres-*")))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "portal_on_a_database")
    result.assert_outcomes(passed=1)
    assert "?host=" in (tmp_path / "db.txt").read_text()  # a private server on a unix socket
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "portal-dev-postgres-*"))) == clusters
