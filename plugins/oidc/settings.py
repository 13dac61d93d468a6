"""The OIDC plugin's settings section. Small on purpose: imported at startup, before anything is selected."""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from portal_core.config import between, setting


def _issuer(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute https:// URL, like https://id.example.com"
    if parts.query or parts.fragment:
        return "must have no query or fragment"
    if value.rstrip("/").endswith("/.well-known/openid-configuration"):
        return "must be the issuer itself, without /.well-known/openid-configuration"
    return None


def _scopes(value: str) -> str | None:
    return None if "openid" in value.split() else 'must include "openid" (space-separated scopes)'


@attrs.frozen
class OidcSettings:
    """Sign-in through an OpenID Connect provider (Pocket ID)."""

    issuer: str = setting(
        "POCKET_ID_ISSUER", check=_issuer,
        hint="Pocket ID's public URL, e.g. https://id.example.com (its /.well-known/openid-configuration must answer)")
    client_id: str = setting(
        "POCKET_ID_CLIENT_ID",
        hint="Pocket ID → Administration → OIDC Clients → your client's Client ID; set its callback URL to "
             "<APP_BASE_URL>/auth/callback and its logout callback URL to <APP_BASE_URL>/")
    client_secret: str = setting(
        "POCKET_ID_CLIENT_SECRET", secret=True,
        hint="the client secret Pocket ID shows once when the OIDC client is created (or regenerated)")
    scopes: str = setting(
        "POCKET_ID_SCOPES", default="openid profile email groups", check=_scopes,
        hint='space-separated scopes to ask for; "groups" is needed for POCKET_ID_ADMIN_GROUP')
    admin_group: str = setting(
        "POCKET_ID_ADMIN_GROUP", default="",
        hint="members of this Pocket ID group are portal admins (empty: nobody is made admin by the provider)")
    timeout: int = setting(
        "POCKET_ID_TIMEOUT", default=10, check=between(1, 120, " seconds"),
        hint="seconds to wait for Pocket ID to answer (discovery, token exchange, keys, userinfo)")
    clock_skew: int = setting(
        "POCKET_ID_CLOCK_SKEW", default=60, check=between(0, 600, " seconds"),
        hint="seconds of clock difference tolerated when checking id_token times (exp, iat)")
