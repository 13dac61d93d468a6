"""DevAuth: a development sign-in form. No password — never selected in production."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from portal_core.interfaces import Health, Identity, LoginFailed, LoginStart
from portal_core.web.inputs import same_secret

log = logging.getLogger("portal.dev_stubs")

ISSUER = "dev"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class DevAuth:
    """Anyone can sign in as anyone: the form asks for an email, a name and whether to be an admin."""

    name = "dev"
    form_action_origins: tuple[str, ...] = ()

    def __init__(self) -> None:
        log.warning("DevAuth is selected: anyone can sign in as anyone (development only)")

    async def begin_login(self, *, callback_url: str) -> LoginStart:
        state = secrets.token_urlsafe(24)
        return LoginStart(redirect_url="/dev/login?" + urlencode({"state": state}), state={"state": state})

    async def complete_login(self, *, params: Mapping[str, str], state: Mapping[str, Any], callback_url: str) -> Identity:
        if not same_secret(str(params.get("state", "")), str(state.get("state", ""))):
            raise LoginFailed("This sign-in form is stale. Please start again.", reason="dev login state mismatch")
        email = str(params.get("email", "")).strip().lower()
        if not _EMAIL.match(email) or len(email) > 254:
            raise LoginFailed("Enter an email address such as ada@example.com.", reason=f"dev login: bad email {email!r}")
        name = str(params.get("name", "")).strip()[:200] or email.split("@")[0]
        return Identity(issuer=ISSUER, subject=email, email=email, name=name, email_verified=True,
                        is_admin=params.get("admin") in ("on", "true", "1"))

    async def logout_url(self, *, session_data: Mapping[str, Any], post_logout_redirect_url: str) -> str | None:
        return None

    async def health(self) -> Health:
        return Health.ok("development sign-in (no identity provider)")
