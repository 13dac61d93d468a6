"""A third-party storage plugin, written the way an integrator would: files on a local disk.

It is installed for the tests as its own distribution (`portal-diskstore-example`, see the
dist-info folder beside this package) that registers under the `portal` entry-point group, exactly
like the built-in plugins. Selected with STORAGE_BACKEND=diskstore; DISKSTORE_ROOT says where.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import attrs

from portal_core import hookimpl
from portal_core.backends import Backend
from portal_core.config import ConfigSection, setting
from portal_core.interfaces import Download, Health, ObjectNotFound, ObjectTooLarge, StoredObject


@attrs.frozen
class DiskstoreSettings:
    root: Path = setting("DISKSTORE_ROOT", hint="directory where the example plugin keeps artifacts")


@attrs.frozen
class AuditSettings:
    label: str = setting("DISKSTORE_AUDIT_LABEL", default="diskstore", hint="a label the example plugin logs")


class DiskStorage:
    name = "diskstore"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()

    async def put(self, key, chunks, *, max_bytes, content_type):
        path = self._path(key)
        size = 0
        try:
            with open(path, "wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise ObjectTooLarge(max_bytes)
                    handle.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return StoredObject(key, size)

    async def download(self, key, *, filename, content_type):
        path = self._path(key)
        if not path.exists():
            raise ObjectNotFound(key)

        async def stream():
            with open(path, "rb") as handle:
                while chunk := handle.read(65536):
                    yield chunk

        return Download(stream=stream(), size=path.stat().st_size)

    async def delete(self, key):
        self._path(key).unlink(missing_ok=True)

    async def health(self):
        return Health.ok() if os.access(self.root, os.W_OK) else Health.down(f"{self.root} is not writable")


@contextlib.asynccontextmanager
async def _open(ctx):
    yield DiskStorage(ctx.settings.root)


@hookimpl
def portal_storage_backend():
    return Backend(name="diskstore", open=_open, settings=DiskstoreSettings, description="example: local disk")


@hookimpl
def portal_config_sections():
    return [ConfigSection("diskstore-audit", AuditSettings, "example of an always-validated plugin section")]


@hookimpl
def portal_cli(subparsers):
    command = subparsers.add_parser("diskstore-du", help="how many files and bytes the diskstore keeps")
    command.set_defaults(func=_disk_usage)


def _disk_usage(args) -> int:
    from portal_core.cli import config_or_exit

    config = config_or_exit(args)  # exits 78 naming every missing setting, like any portal command
    root = config.backend_settings("storage").root
    files = [p for p in Path(root).rglob("*") if p.is_file()] if Path(root).is_dir() else []
    print(f"{len(files)} file(s), {sum(p.stat().st_size for p in files)} bytes in {root}")
    return 0
