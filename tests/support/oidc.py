"""A real OpenID Connect provider for tests, and a driver for its sign-in pages.

:func:`start_provider` runs tests/oidc_provider/provider.mjs (panva/oidc-provider under Node) on
127.0.0.1 and waits for its ready line; :func:`stop_provider` stops it by PID. :func:`sign_in` walks
the provider's development login and consent pages over HTTP the way a browser would, and stops at
the redirect back to the relying party, returning that URL (code, state, iss) without following it.
"""

from __future__ import annotations

import base64
import contextlib
import html.parser
import json
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import attrs
from yarl import URL

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc_provider"
SETUP_HINT = "run tests/setup.d/oidc.sh (it installs the test provider with npm ci)"
CLIENT_ID = "portal"
CLIENT_SECRET = "portal-test-secret"
# Where the provider sends the browser back. Tests that drive OidcAuth directly stop at the redirect.
CALLBACK_URL = "http://127.0.0.1:8080/auth/callback"
POST_LOGOUT_URL = "http://127.0.0.1:8080/"
READY_TIMEOUT = 30.0


@attrs.frozen
class Provider:
    """A running test provider: where it answers and how to stop it."""

    issuer: str
    port: int
    kid: str
    client_id: str
    client_secret: str
    process: subprocess.Popen = attrs.field(repr=False)
    log_path: Path = attrs.field(repr=False)
    reader: threading.Thread = attrs.field(repr=False)

    def log(self) -> str:
        """What the provider wrote to stderr (for failure messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def jwt_segment(token: str, index: int) -> dict:
    """A JWT's header (0) or claims (1), decoded without any checking, for assertions."""
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_provider(
    *,
    redirect_uris: list[str],
    post_logout_uris: list[str] = (),
    port: int = 0,
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
    id_token_ttl: int | None = None,
) -> Provider:
    """Start the provider and wait until it serves. Fails loudly when Node or its packages are missing."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(f"node is not on PATH; the OIDC tests need Node.js 20+ — {SETUP_HINT}")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(f"{PROVIDER_DIR / 'node_modules'} has no oidc-provider — {SETUP_HINT}")
    env = dict(os.environ, OIDC_PORT=str(port), OIDC_CLIENT_ID=client_id, OIDC_CLIENT_SECRET=client_secret,
               OIDC_REDIRECT_URIS=",".join(redirect_uris), OIDC_POST_LOGOUT_URIS=",".join(post_logout_uris))
    if id_token_ttl is not None:
        env["OIDC_ID_TOKEN_TTL"] = str(id_token_ttl)
    log_fd, log_name = tempfile.mkstemp(prefix="oidc-provider-", suffix=".log")
    with os.fdopen(log_fd, "wb") as log:
        process = subprocess.Popen([node, "provider.mjs"], cwd=PROVIDER_DIR, env=env,
                                   stdout=subprocess.PIPE, stderr=log, text=True)
    log_path = Path(log_name)
    lines, reader = _read_lines(process)
    line = _ready_line(lines)
    if line is None:
        process.kill()
        process.wait()
        reader.join()
        raise RuntimeError(f"the test OIDC provider did not start (exit status {process.returncode}):\n"
                           f"{log_path.read_text(errors='replace')}")
    info = json.loads(line.removeprefix("oidc-provider ready "))
    return Provider(issuer=info["issuer"], port=info["port"], kid=info["kid"], client_id=client_id,
                    client_secret=client_secret, process=process, log_path=log_path, reader=reader)


def _read_lines(process: subprocess.Popen) -> tuple[queue.Queue[str | None], threading.Thread]:
    """Drain the provider's stdout in a thread (closing it at EOF); None marks the end."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        with process.stdout:
            for raw in process.stdout:
                lines.put(raw.strip())
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return lines, reader


def _ready_line(lines: queue.Queue[str | None]) -> str | None:
    """The provider's ready line, or None if it exits or stays silent too long."""
    while True:
        try:
            line = lines.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            return None
        if line is None or line.startswith("oidc-provider ready "):
            return line


@contextlib.contextmanager
def running_provider(*, redirect_uris: list[str] = (CALLBACK_URL,), post_logout_uris: list[str] = (POST_LOGOUT_URL,),
                     **options) -> Iterator[Provider]:
    """A provider (by default for the test callback URLs), stopped by PID however the test ends."""
    provider = start_provider(redirect_uris=list(redirect_uris), post_logout_uris=list(post_logout_uris), **options)
    try:
        yield provider
    finally:
        stop_provider(provider)


def stop_provider(provider: Provider) -> None:
    """Stop the provider by its PID and wait for it to exit."""
    process = provider.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    provider.reader.join(timeout=10)
    provider.log_path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------
# Driving the development login and consent pages


class _Forms(html.parser.HTMLParser):
    """The forms on a page (action, method, inputs, submit buttons) and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs_}
        if tag == "form":
            self.forms.append({"action": attributes.get("action", ""), "method": attributes.get("method", "get"),
                               "id": attributes.get("id", ""), "inputs": {}, "buttons": []})
        elif tag == "input" and attributes.get("name"):
            form = self._owner(attributes)
            if form is not None:
                form["inputs"][attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and attributes.get("name"):
            form = self._owner(attributes)
            if form is not None:
                form["buttons"].append((attributes["name"], attributes.get("value", "")))
        elif tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])

    def _owner(self, attributes: dict) -> dict | None:
        # A control may name its form by id (form="op.logoutForm") instead of sitting inside it.
        if attributes.get("form"):
            return next((f for f in self.forms if f["id"] == attributes["form"]), None)
        return self.forms[-1] if self.forms else None


def forms_on(page: str, url: str) -> _Forms:
    """The forms and links of a provider page; fails the test when it has no form."""
    parser = _Forms()
    parser.feed(page)
    if not parser.forms:
        raise AssertionError(f"no form on the provider's page at {url}: {page[:500]}")
    return parser


def client_session() -> aiohttp.ClientSession:
    """A browser-like session: keeps cookies for 127.0.0.1 (the default jar ignores IP hosts)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(
    browser: aiohttp.ClientSession,
    authorize_url: str,
    *,
    stop_at: str,
    login: str = "alice",
    password: str = "any password",
    consent: bool = True,
    max_steps: int = 15,
) -> URL:
    """Follow ``authorize_url`` through the provider's pages until it redirects to ``stop_at``.

    Signs in as ``login`` and grants consent (or cancels at the consent page when ``consent`` is
    False). Returns the redirect URL back to the relying party, with its code/state/error query.
    """
    url, method, data = authorize_url, "GET", None
    for _ in range(max_steps):
        async with browser.request(method, url, data=data, allow_redirects=False) as response:
            if response.status in (301, 302, 303, 307, 308):
                location = urljoin(url, response.headers["Location"])
                if location.startswith(stop_at):
                    return URL(location)
                url, method, data = location, "GET", None
                continue
            page = await response.text()
            if response.status != 200:
                raise AssertionError(f"the provider answered {response.status} at {url}: {page[:500]}")
        forms = forms_on(page, url)
        form = forms.forms[0]
        inputs = dict(form["inputs"])
        if "login" in inputs or inputs.get("prompt") == "login":
            inputs.update(login=login, password=password)
        elif not consent:
            abort = next(link for link in forms.links if "/abort" in link)
            url, method, data = urljoin(url, abort), "GET", None
            continue
        url, method, data = urljoin(url, form["action"]), form["method"].upper(), inputs
    raise AssertionError(f"the provider never redirected to {stop_at} within {max_steps} steps")


async def confirm_logout(browser: aiohttp.ClientSession, logout_url: str) -> URL:
    """Open the provider's end-session URL, say yes on its confirmation page; return where it sends us."""
    async with browser.get(logout_url, allow_redirects=False) as response:
        page = await response.text()
        if response.status != 200:
            raise AssertionError(f"the provider refused the logout URL ({response.status}): {page[:500]}")
    form = forms_on(page, logout_url).forms[0]
    data = dict(form["inputs"], **dict(form["buttons"][:1] or [("logout", "yes")]))
    action = urljoin(logout_url, form["action"])
    async with browser.post(action, data=data, allow_redirects=False) as response:
        if response.status not in (302, 303):
            raise AssertionError(f"logout confirmation answered {response.status}: {(await response.text())[:500]}")
        return URL(urljoin(action, response.headers["Location"]))
