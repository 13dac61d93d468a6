"""In-process portal apps for API tests, built through the same create_app the CLI uses (fixtures: make_app, client, sign_in)."""

from __future__ import annotations

import aiohttp
import pytest

from portal_core.app import create_app
from portal_core.plugins import make_plugin_manager
from portal_core.settings import load_config
from tests.support.portal import dev_sign_in


@pytest.fixture
def make_app(database_url, tmp_path):
    """make_app(**env) -> an Application in DEV_MODE on the test database, with extra env."""

    def build(extra_plugins=(), **env):
        values = {"DEV_MODE": "true", "DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path / "data"),
                  "APP_BASE_URL": "http://127.0.0.1:8080", **env}
        pm = make_plugin_manager(extra=extra_plugins)
        return create_app(load_config(values, pm), pm)

    return build


@pytest.fixture
async def client(make_app, aiohttp_client):
    """A test client on a DEV_MODE portal (cookie jar accepts cookies from 127.0.0.1)."""
    return await aiohttp_client(make_app())


class Browser:
    """A signed-in browser: an aiohttp session with the portal's cookie and CSRF token."""

    def __init__(self, client, session: aiohttp.ClientSession, csrf: str) -> None:
        self.client = client
        self.session = session
        self.csrf = csrf

    def url(self, path: str) -> str:
        return str(self.client.make_url(path))

    def request(self, method: str, path: str, *, csrf: bool = True, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if csrf and method not in ("GET", "HEAD"):
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.session.request(method, self.url(path), headers=headers, allow_redirects=False, **kwargs)

    async def upload(self, data: bytes, filename: str = "a.bin", content_type: str = "application/octet-stream", **kw):
        body, header = browser_multipart(data, filename, content_type)
        headers = {**kw.pop("headers", {}), "Content-Type": header}
        return await self.request("POST", "/api/artifacts", data=body, headers=headers, **kw)


def browser_multipart(data: bytes, filename: str, content_type: str) -> tuple[bytes, str]:
    """A multipart body exactly as browsers build it (HTML spec): the filename as raw UTF-8 with only
    '"', CR and LF percent-encoded. (aiohttp's FormData percent-encodes every non-ASCII byte instead.)"""
    boundary = "----PortalTestBoundary7MA4YWxkTrZu0gW"
    escaped = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{escaped}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode("utf-8")
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
async def sign_in(client):
    """sign_in(email, on=client) -> a Browser signed in through the real dev login flow.

    ``on`` defaults to the ``client`` fixture's portal; pass another test client to sign in there.
    """
    sessions = []

    async def make(email: str = "ada@example.com", *, on=None, **kwargs) -> Browser:
        target = on if on is not None else client
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(session)
        csrf = await dev_sign_in(session, str(target.make_url("")).rstrip("/"), email=email, **kwargs)
        return Browser(target, session, csrf)

    yield make
    for session in sessions:
        await session.close()
