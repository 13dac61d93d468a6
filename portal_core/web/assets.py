"""The browser front end: pages and fingerprinted static files from the embedded assets/.

All static files are served under /static/<version>/, where the version is a hash of every asset,
so they can be cached for a year (immutable) and an ES module's relative imports stay on the same
version. Pages are served no-cache with {{static}} and {{dev_mode}} filled in.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import PurePosixPath

import attrs
from aiohttp import web

from .. import keys

# /login is served by auth.login_page, which fills in its ``next``.
PAGES = {"/": "index.html", "/account": "account.html", "/billing": "billing.html",
         "/sharing": "sharing.html"}
IMMUTABLE = "public, max-age=31536000, immutable"
# The front end's file types. A fixed table rather than the mimetypes module, whose first use reads the
# system's mime.types files (about 16 ms of every start) and varies from machine to machine.
CONTENT_TYPES = {
    ".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript",
    ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
    ".ico": "image/x-icon", ".webp": "image/webp", ".woff2": "font/woff2", ".txt": "text/plain",
    ".webmanifest": "application/manifest+json",
}


@attrs.frozen
class Assets:
    version: str
    files: dict[str, tuple[bytes, str]]  # relative path -> (bytes, content type)

    @property
    def prefix(self) -> str:
        return f"/static/{self.version}"


def read_tree(root) -> tuple[dict[str, tuple[bytes, str]], str]:
    """Every file under ``root`` (a Path or importlib Traversable; dot-files skipped) with its content
    type, keyed by relative POSIX path, and a fingerprint of the whole set."""
    files: dict[str, tuple[bytes, str]] = {}
    digest = hashlib.sha256()

    def walk(node, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            path = f"{prefix}{child.name}"
            if child.name.startswith("."):
                continue
            if child.is_dir():
                walk(child, path + "/")
            else:
                data = child.read_bytes()
                ctype = CONTENT_TYPES.get(PurePosixPath(child.name).suffix.lower(), "application/octet-stream")
                files[path] = (data, ctype)
                digest.update(path.encode() + b"\0" + data + b"\0")

    if root.is_dir():
        walk(root, "")
    return files, digest.hexdigest()[:12]


def load_assets(dev_mode: bool) -> Assets:
    """Read every embedded asset once at startup (they are small) and fingerprint the set."""
    files, version = read_tree(resources.files("portal_core.resources").joinpath("assets"))
    prefix = f"/static/{version}".encode()
    rendered = {}
    for path, (data, ctype) in files.items():
        if path.endswith(".html"):
            data = data.replace(b"{{static}}", prefix).replace(b"{{dev_mode}}", b"true" if dev_mode else b"false")
        rendered[path] = (data, ctype)
    return Assets(version, rendered)


async def static_file(request: web.Request) -> web.Response:
    assets = request.app[keys.ASSETS]
    path = request.match_info["path"]
    entry = assets.files.get(path)
    if entry is None or request.match_info["version"] != assets.version:
        raise web.HTTPNotFound(text="no such file in this version of the portal")
    data, ctype = entry
    return web.Response(body=data, content_type=ctype, headers={"Cache-Control": IMMUTABLE})


async def favicon(request: web.Request) -> web.Response:
    """/favicon.ico, which browsers ask for on their own (pages link the SVG logo as their icon)."""
    entry = request.app[keys.ASSETS].files.get("img/favicon.ico")
    if entry is None:
        raise web.HTTPNotFound(text="the favicon is missing from the installed assets")
    return web.Response(body=entry[0], content_type=entry[1], headers={"Cache-Control": "public, max-age=86400"})


async def page(request: web.Request) -> web.Response:
    entry = request.app[keys.ASSETS].files.get(PAGES[request.path])
    if entry is None:
        raise web.HTTPNotFound(text="this page is missing from the installed assets")
    return web.Response(body=entry[0], content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})
