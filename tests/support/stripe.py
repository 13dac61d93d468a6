"""Test support for Stripe billing: the loopback fake Stripe (tests/fakes/stripe_fake.py) and webhook signing.

``StripeFake`` runs the fake in the localstripe venv (tests/setup.d/stripe.sh) as a subprocess on
127.0.0.1, and drives it the way Stripe and a paying customer would: create prices, pay a Checkout
Session on its hosted page, change a subscription as Stripe's lifecycle would, cancel it, list the
events it emitted. ``signed_headers`` signs a payload exactly as Stripe signs webhooks.

Fixtures (import them into a conftest): ``stripe_server`` (one fake per session), ``stripe_fake``
(that fake with its data wiped and a Pro price created, per test).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import select
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venvs" / "localstripe" / "bin" / "python"
FAKE_SCRIPT = ROOT / "tests" / "fakes" / "stripe_fake.py"
SECRET_KEY = "sk_test_portal"
WEBHOOK_SECRET = "whsec_portal_test_secret"
START_TIMEOUT = 30


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature value Stripe sends: HMAC-SHA256 over "{t}.{raw body}" with the signing secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def signed_headers(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a webhook delivery of ``payload`` (the raw bytes that are sent)."""
    return {"Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(payload, secret, timestamp)}


def event_body(event: dict[str, Any]) -> bytes:
    """An event serialised as Stripe sends it (pretty-printed JSON: the bytes signed are the bytes sent)."""
    return json.dumps(event, indent=2).encode()


class StripeFake:
    """The fake Stripe subprocess and the test-side controls of it."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.base_url = ""
        self.pro_price = ""
        self._log = tempfile.TemporaryFile()

    # -- process --------------------------------------------------------------------------------------

    def start(self) -> StripeFake:
        if not VENV_PYTHON.exists():
            pytest.fail(f"the localstripe venv is missing ({VENV_PYTHON}): run tests/setup.d/stripe.sh", pytrace=False)
        self.process = subprocess.Popen([str(VENV_PYTHON), str(FAKE_SCRIPT)], stdout=subprocess.PIPE,
                                        stderr=self._log, cwd=str(ROOT))
        deadline = time.monotonic() + START_TIMEOUT
        line = b""
        while time.monotonic() < deadline and self.process.poll() is None:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                break
        if not line.startswith(b"listening on "):
            self.stop()
            pytest.fail(f"the fake Stripe did not start (run tests/setup.d/stripe.sh?): {self.output()}", pytrace=False)
        self.base_url = line.decode().split("listening on ", 1)[1].strip()
        return self

    def stop(self) -> None:
        """Stop the fake (by its pid); its port then refuses connections."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    # -- Stripe's API, as a test (or the Stripe dashboard) uses it -------------------------------------

    async def request(self, method: str, path: str, data: dict[str, str] | None = None,
                      *, auth: bool = True, allow_redirects: bool = True) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        headers = {"Authorization": f"Bearer {SECRET_KEY}"} if auth else {}
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.base_url + path, data=data, headers=headers,
                                       allow_redirects=allow_redirects) as response:
                text = await response.text()
                body = json.loads(text) if response.content_type == "application/json" else text
                return response.status, body, response.headers

    async def api(self, method: str, path: str, data: dict[str, str] | None = None) -> Any:
        status, body, _headers = await self.request(method, path, data)
        assert status == 200, f"{method} {path} -> {status}: {body}"
        return body

    async def reset(self) -> None:
        """Forget every object, event and webhook endpoint registered through /_config/webhooks."""
        await self.api("POST", "/_test/reset")

    async def create_price(self, name: str = "Pro", unit_amount: int = 900) -> str:
        price = await self.api("POST", "/v1/prices", {
            "currency": "usd", "unit_amount": str(unit_amount), "recurring[interval]": "month",
            "product_data[name]": name})
        return price["id"]

    async def pay(self, checkout_url: str) -> str:
        """Pay a Checkout Session on its hosted page, as the customer would; returns the success redirect."""
        status, body, headers = await self.request("POST", checkout_url.removeprefix(self.base_url),
                                                   auth=False, allow_redirects=False)
        assert status == 303, f"paying {checkout_url} -> {status}: {body}"
        return headers["Location"]

    async def checkout_session(self, session_id: str) -> dict:
        return await self.api("GET", f"/v1/checkout/sessions/{session_id}")

    async def subscriptions(self, customer: str) -> list[dict]:
        listing = await self.api("GET", f"/v1/subscriptions?customer={customer}&status=all")
        return listing["data"]

    async def change_subscription(self, subscription_id: str, **fields: Any) -> dict:
        """Change status / cancel_at_period_end as Stripe's lifecycle would (emits subscription.updated)."""
        data = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()}
        return await self.api("POST", f"/_test/subscriptions/{subscription_id}", data)

    async def cancel_subscription(self, subscription_id: str) -> dict:
        """End a subscription now (DELETE /v1/subscriptions/<id>; emits customer.subscription.deleted)."""
        return await self.api("DELETE", f"/v1/subscriptions/{subscription_id}")

    async def events(self, event_type: str | None = None) -> list[dict]:
        """Every event the fake emitted, oldest first."""
        path = "/_test/events" + (f"?type={event_type}" if event_type else "")
        return (await self.api("GET", path))["data"]

    async def event(self, event_type: str) -> dict:
        """The newest event of ``event_type``."""
        events = await self.events(event_type)
        assert events, f"the fake Stripe emitted no {event_type} event"
        return events[-1]


@pytest.fixture(scope="session")
def stripe_server():
    """One fake Stripe for the session (stopped at the end)."""
    fake = StripeFake().start()
    yield fake
    fake.stop()


@pytest.fixture
async def stripe_fake(stripe_server):
    """The session's fake Stripe, emptied, with a fresh Pro price at ``stripe_fake.pro_price``."""
    if stripe_server.process.poll() is not None:
        pytest.fail(f"the fake Stripe exited: {stripe_server.output()}", pytrace=False)
    await stripe_server.reset()
    stripe_server.pro_price = await stripe_server.create_price("Pro", 900)
    return stripe_server


def stripe_env(fake: StripeFake, **extra: str) -> dict[str, str]:
    """STRIPE_* settings pointing the portal at ``fake``."""
    return {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STRIPE_PRICE_ID_PRO": fake.pro_price, "STRIPE_API_BASE": fake.base_url, **extra}


__all__ = ["StripeFake", "signature_header", "signed_headers", "event_body", "stripe_server", "stripe_fake",
           "stripe_env", "SECRET_KEY", "WEBHOOK_SECRET"]
