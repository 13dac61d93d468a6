"""`portal smoke`: the operator's post-deploy check of a running portal, over its public HTTP API.

Steps, in order, each printed with its outcome and time; the first failure stops the run (exit 1)
after removing the artifact the run created, if any:

  health     GET /health answers 200 with status "ok" (with the operators' OPS_TOKEN, if given, a failing
             check is named with its detail)
  sign-in    GET /auth/login redirects to the identity provider with PKCE (code_challenge,
             code_challenge_method=S256) and state, and the provider accepts that request; in DEV_MODE
             the development sign-in form at /dev/login stands in for the provider, and the step says so
  upload     POST /api/artifacts with the API token: a small random file → 201, recorded with its size
             and SHA-256
  list       GET /api/artifacts shows it
  download   GET /api/artifacts/{id}/download (following a 302 to the storage URL, without the token)
             returns exactly the bytes uploaded
  delete     DELETE /api/artifacts/{id} → 204, and the artifact is gone (when the download went to a
             storage URL, storage no longer serves the file there either)

Standard library only, so it runs from any machine with the portal installed (or inside its image).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TextIO
from urllib.parse import parse_qs, urljoin, urlsplit

from .redact import mask

EX_USAGE = 64  # sysexits.h
SMOKE_FILE_SIZE = 4096
MAX_PROVIDER_HOPS = 5


class StepFailed(Exception):
    """One step's check did not hold; the message says what was seen."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # Every redirect is looked at by the step itself (where does sign-in send us? is the download a 302?).
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib's signature
        return None


class Answer:
    """A response read whole: status, headers, body."""

    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict:
        try:
            return json.loads(self.body)
        except ValueError:
            raise StepFailed(f"expected JSON, got {self.status}: {self.text()}") from None

    def text(self, limit: int = 300) -> str:
        return self.body[:limit].decode(errors="replace").strip()


class Client:
    """Plain HTTP requests that never follow redirects and never raise for a status code."""

    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirects)

    def browser(self) -> Client:
        """A client with its own cookie jar, for pages that keep a session across redirects (the provider's)."""
        client = Client(self.base_url, "", self.timeout)
        client.opener = urllib.request.build_opener(_NoRedirects, urllib.request.HTTPCookieProcessor())
        return client

    def request(self, method: str, url: str, *, body: bytes | None = None, headers: dict | None = None,
                authorized: bool = False) -> Answer:
        url = urljoin(self.base_url + "/", url)
        headers = {"User-Agent": "portal-smoke", **(headers or {})}
        if authorized:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=self.timeout) as response:
                return Answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Answer(exc.code, exc.headers, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StepFailed(f"{method} {url}: unreachable: {reason}") from None


def _error_of(answer: Answer) -> str:
    try:
        error = json.loads(answer.body)["error"]
        return f"{answer.status} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{answer.status}: {answer.text()}"


def _multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "portal-smoke-" + secrets.token_hex(12)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Smoke:
    """The steps; state (the artifact id, the bytes) passes from one to the next."""

    def __init__(self, client: Client, ops_token: str = "") -> None:
        self.client = client
        self.ops_token = ops_token
        self.content = secrets.token_bytes(SMOKE_FILE_SIZE)
        self.filename = f"portal-smoke-{secrets.token_hex(4)}.bin"
        self.artifact_id: str | None = None
        self.storage_url: str | None = None  # where the download was sent (a signed storage URL), if anywhere

    def health(self) -> str:
        # The operators' token only goes to /health: anonymously it shows statuses, with it the details.
        headers = {"Authorization": f"Bearer {self.ops_token}"} if self.ops_token else {}
        answer = self.client.request("GET", "/health", headers=headers)
        body = answer.json()
        checks = ", ".join(f"{name} {check.get('status')}" + (f" ({check['detail']})" if check.get("status") != "ok"
                           and check.get("detail") else "") for name, check in body.get("checks", {}).items())
        if answer.status != 200 or body.get("status") != "ok":
            raise StepFailed(f"{answer.status} {body.get('status')}: {checks}")
        return f"status ok: {checks}"

    def sign_in(self) -> str:
        answer = self.client.request("GET", "/auth/login")
        location = answer.headers.get("Location") if answer.status in (302, 303, 307) else None
        if not location:
            raise StepFailed(f"expected a redirect to the identity provider, got {_error_of(answer)}")
        target = urljoin(self.client.base_url + "/auth/login", location)
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        same_origin = parts.netloc == urlsplit(self.client.base_url).netloc
        if same_origin and parts.path == "/dev/login":
            if not query.get("state"):
                raise StepFailed(f"the development sign-in redirect has no state: {location}")
            return "DEV_MODE: redirects to the development sign-in form /dev/login (no identity provider)"
        missing = [name for name in ("state", "code_challenge") if not query.get(name)]
        if query.get("code_challenge_method") != ["S256"]:
            missing.append("code_challenge_method=S256")
        if missing:
            raise StepFailed(f"the redirect to {parts.scheme}://{parts.netloc}{parts.path} lacks {', '.join(missing)}")
        provider = self._provider_answer(target)
        return f"redirects to {parts.scheme}://{parts.netloc}{parts.path} with PKCE (S256) and state; {provider}"

    def _provider_answer(self, url: str) -> str:
        """Ask the provider's authorization endpoint: a client or redirect URI it does not know shows here."""
        browser = self.client.browser()
        for _hop in range(MAX_PROVIDER_HOPS):
            answer = browser.request("GET", url)
            if answer.status in (301, 302, 303, 307, 308) and answer.headers.get("Location"):
                url = urljoin(url, answer.headers["Location"])
                if url.startswith(self.client.base_url + "/auth/callback"):
                    error = parse_qs(urlsplit(url).query).get("error")
                    if error:
                        raise StepFailed(f"the identity provider refused the sign-in request: {error[0]}")
                    return "the provider answered at once with a callback"
                continue
            if answer.status >= 400:
                raise StepFailed(f"the identity provider refused the sign-in request: {answer.status}: {answer.text()}")
            return f"the provider answers {answer.status}"
        return "the provider answers with redirects"

    def upload(self) -> str:
        body, content_type = _multipart(self.filename, self.content)
        answer = self.client.request("POST", "/api/artifacts", body=body, authorized=True,
                                     headers={"Content-Type": content_type})
        if answer.status != 201:
            raise StepFailed(f"expected 201, got {_error_of(answer)}")
        artifact = answer.json()
        self.artifact_id = str(artifact["id"])
        if artifact.get("size") != len(self.content):
            raise StepFailed(f"the portal recorded {artifact.get('size')} bytes, {len(self.content)} were sent")
        digest = hashlib.sha256(self.content).hexdigest()
        if artifact.get("sha256") != digest:
            raise StepFailed(f"the portal recorded SHA-256 {artifact.get('sha256')!r}; the file sent has {digest}")
        return f"artifact {self.artifact_id} ({len(self.content)} bytes, SHA-256 matches)"

    def list(self) -> str:
        cursor, pages = None, 0
        while True:
            answer = self.client.request("GET", "/api/artifacts?limit=200" + (f"&cursor={cursor}" if cursor else ""),
                                         authorized=True)
            if answer.status != 200:
                raise StepFailed(f"expected 200, got {_error_of(answer)}")
            listing = answer.json()
            pages += 1
            if any(str(item.get("id")) == self.artifact_id for item in listing.get("artifacts", [])):
                return f"artifact listed (page {pages})"
            cursor = listing.get("next_cursor")
            if not cursor:
                raise StepFailed(f"artifact {self.artifact_id} is not in the listing")

    def download(self) -> str:
        answer = self.client.request("GET", f"/api/artifacts/{self.artifact_id}/download", authorized=True)
        how = "streamed by the portal"
        if answer.status in (302, 303, 307) and answer.headers.get("Location"):
            location = urljoin(self.client.base_url + "/", answer.headers["Location"])
            # The token is for the portal only; the storage URL carries its own signature.
            answer = self.client.request("GET", location)
            how = f"302 to storage at {urlsplit(location).netloc}"
            self.storage_url = location
        if answer.status != 200:
            raise StepFailed(f"expected the file, got {_error_of(answer)} ({how})")
        if answer.body != self.content:
            raise StepFailed(f"downloaded {len(answer.body)} bytes that differ from the {len(self.content)} uploaded ({how})")
        return f"{how}; {len(answer.body)} bytes match"

    def delete(self) -> str:
        answer = self.client.request("DELETE", f"/api/artifacts/{self.artifact_id}", authorized=True)
        if answer.status != 204:
            raise StepFailed(f"expected 204, got {_error_of(answer)}")
        deleted, self.artifact_id = self.artifact_id, None
        gone = self.client.request("GET", f"/api/artifacts/{deleted}", authorized=True)
        if gone.status != 404:
            raise StepFailed(f"artifact {deleted} still answers {gone.status} after its deletion")
        if self.storage_url is None:
            return f"artifact {deleted} deleted"
        # The download's storage URL is still signed: storage must no longer have the file behind it.
        stale = self.client.request("GET", self.storage_url)
        if stale.status == 200:
            raise StepFailed(f"artifact {deleted} is deleted, but storage still serves its file "
                             f"({urlsplit(self.storage_url).netloc}): an orphaned object")
        return f"artifact {deleted} deleted, and storage no longer has its file ({stale.status})"

    def cleanup(self) -> str | None:
        """Remove the artifact a failed run left behind; a sentence saying what happened, or None."""
        if self.artifact_id is None:
            return None
        try:
            answer = self.client.request("DELETE", f"/api/artifacts/{self.artifact_id}", authorized=True)
        except StepFailed as exc:
            return f"could not delete artifact {self.artifact_id}: {exc}"
        if answer.status in (204, 404):
            return f"artifact {self.artifact_id} deleted"
        return f"could not delete artifact {self.artifact_id}: {_error_of(answer)}"


def run(base_url: str, token: str, *, timeout: float = 30.0, out: TextIO = sys.stdout, ops_token: str = "") -> int:
    """Run every step against ``base_url``; 0 when all passed, 1 at the first failure."""
    smoke = Smoke(Client(base_url, token, timeout), ops_token)
    steps: list[tuple[str, Callable[[], str]]] = [
        ("health", smoke.health), ("sign-in", smoke.sign_in), ("upload", smoke.upload),
        ("list", smoke.list), ("download", smoke.download), ("delete", smoke.delete)]
    hidden = (token, ops_token)  # never printed, nor a URL's password or a presigned URL's signature

    def say(line: str) -> None:
        print(mask(line, hidden), file=out)

    say(f"portal smoke test of {base_url}")
    started = time.perf_counter()
    for name, step in steps:
        begun = time.perf_counter()
        try:
            detail = step()
        except StepFailed as exc:
            say(f"  FAIL  {name:<9} {_ms(begun)}  {exc}")
            note = smoke.cleanup()
            if note:
                say(f"  ...   cleanup   {note}")
            say(f"smoke test FAILED at {name}")
            return 1
        say(f"  ok    {name:<9} {_ms(begun)}  {detail}")
    print(f"smoke test passed: {len(steps)} steps in {time.perf_counter() - started:.2f} s", file=out)
    return 0


def _ms(since: float) -> str:
    return f"{(time.perf_counter() - since) * 1000:6.0f} ms"


def cmd_smoke(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("PORTAL_SMOKE_TOKEN", "")
    base = args.base_url
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        print(f"portal smoke: --base-url must be the portal's http(s) URL, got {mask(repr(base))}", file=sys.stderr)
        return EX_USAGE
    if not token.strip():
        print("portal smoke: an API token is needed: --token TOKEN or PORTAL_SMOKE_TOKEN "
              "(create one on the portal's API tokens page)", file=sys.stderr)
        return EX_USAGE
    ops_token = (args.ops_token or os.environ.get("OPS_TOKEN", "")).strip()
    return run(base, token.strip(), timeout=args.timeout, ops_token=ops_token)
