"""The one upload the operations tests make: POST /api/artifacts with an API token, as a script would."""

from __future__ import annotations

import aiohttp


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upload(base_url: str, token: str, content, filename: str = "ops.bin") -> tuple[int, dict]:
    """Upload ``content`` (bytes or an async iterator of bytes); the status and the JSON answer."""
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="application/octet-stream")
    async with aiohttp.ClientSession() as http, \
            http.post(f"{base_url}/api/artifacts", data=form, headers=bearer(token)) as response:
        return response.status, await response.json()
