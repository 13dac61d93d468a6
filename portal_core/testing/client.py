"""Signed-in customers for tests: :func:`signed_in` walks the real development sign-in of a portal.

Each customer gets a browser of its own (an aiohttp session with its own cookie jar), so several can be
signed in to one portal at once. Requests send the session's CSRF token, as the front end does.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import aiohttp

_REGISTRY = "_portal_signed_in"


class SignedIn:
    """A customer signed in to a portal: ``await user.request("POST", "/api/tokens", json={...})``.

    ``session`` is the browser (cookies), ``csrf`` the session's CSRF token, ``email`` who it is. Responses
    are aiohttp's; redirects are not followed (a test looks at them).
    """

    def __init__(self, client, session: aiohttp.ClientSession, csrf: str, email: str = "") -> None:
        self.client = client
        self.session = session
        self.csrf = csrf
        self.email = email

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on the portal."""
        if isinstance(self.client, str):
            return self.client.rstrip("/") + path
        return str(self.client.make_url(path))

    def request(self, method: str, path: str, *, csrf: bool = True, **kwargs):
        """``session.request`` on the portal, with the CSRF header on state-changing methods (``csrf=False``
        leaves it off, to test the refusal)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if csrf and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.session.request(method, self.url(path), headers=headers, allow_redirects=False, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)

    async def upload(self, data: bytes, filename: str = "a.bin", content_type: str = "application/octet-stream",
                     **kwargs):
        """POST /api/artifacts with ``data`` as the browser's upload form sends a file."""
        body, header = browser_multipart(data, filename, content_type)
        headers = {**kwargs.pop("headers", {}), "Content-Type": header}
        return await self.request("POST", "/api/artifacts", data=body, headers=headers, **kwargs)

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> SignedIn:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()


def browser_multipart(data: bytes, filename: str, content_type: str) -> tuple[bytes, str]:
    """A multipart body exactly as browsers build it (HTML spec): the filename as raw UTF-8 with only
    '"', CR and LF percent-encoded. (aiohttp's FormData percent-encodes every non-ASCII byte instead.)"""
    boundary = "----PortalTestBoundary7MA4YWxkTrZu0gW"
    escaped = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{escaped}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n").encode("utf-8")
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def dev_sign_in(session: aiohttp.ClientSession, portal_url: str, email: str = "ada@example.com",
                      name: str = "", admin: bool = False, next_path: str = "/") -> str:
    """Sign ``session`` in through the portal's development sign-in form; returns the CSRF token.

    The session must keep cookies for an IP host (``aiohttp.CookieJar(unsafe=True)``).
    """
    async with session.get(f"{portal_url}/auth/login", params={"next": next_path}, allow_redirects=False) as resp:
        location = resp.headers.get("Location", "")
        if resp.status != 302 or not location.startswith("/dev/login"):
            raise AssertionError(f"signed_in needs the development sign-in (AUTH_BACKEND=dev, the default in "
                                 f"DEV_MODE); /auth/login answered {resp.status} to {location or '(nowhere)'}: "
                                 f"{(await resp.text())[:300]}")
        state = parse_qs(urlsplit(location).query)["state"][0]
    form = {"state": state, "email": email, "name": name or email.split("@")[0].capitalize()}
    if admin:
        form["admin"] = "on"
    async with session.post(f"{portal_url}/auth/callback", data=form, allow_redirects=False) as resp:
        if resp.status != 302:
            raise AssertionError(f"the development sign-in of {email!r} failed ({resp.status}): {(await resp.text())[:500]}")
    async with session.get(f"{portal_url}/api/me") as resp:
        if resp.status != 200:
            raise AssertionError(f"signed in as {email!r}, but /api/me answered {resp.status}: {await resp.text()}")
        return (await resp.json())["csrf_token"]


async def signed_in(client, email: str = "ada@example.com", admin: bool = False, *, name: str = "",
                    next_path: str = "/") -> SignedIn:
    """``email`` signed in to the portal ``client`` serves (an aiohttp test client, or a base URL string),
    through its real development sign-in; ``admin=True`` signs in as an administrator.

    Browsers of a test client are closed with it (the ``portal_client`` fixture does so, or call
    :func:`close_signed_in`); with a URL, close the returned :class:`SignedIn` yourself (``async with``).
    """
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    base = client.rstrip("/") if isinstance(client, str) else str(client.make_url("")).rstrip("/")
    try:
        csrf = await dev_sign_in(session, base, email=email, name=name, admin=admin, next_path=next_path)
    except BaseException:
        await session.close()
        raise
    user = SignedIn(client, session, csrf, email)
    if not isinstance(client, str):
        opened = getattr(client, _REGISTRY, None)
        if opened is None:
            opened = []
            setattr(client, _REGISTRY, opened)
        opened.append(user)
    return user


async def close_signed_in(client) -> None:
    """Close the browsers :func:`signed_in` opened on ``client``."""
    for user in getattr(client, _REGISTRY, None) or ():
        await user.close()
    if hasattr(client, _REGISTRY):
        setattr(client, _REGISTRY, [])
