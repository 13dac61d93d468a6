"""The OIDC plugin's settings and its backend registration."""

from __future__ import annotations

import subprocess
import sys

import aiohttp

from portal_plugins.oidc import portal_auth_backend
from portal_plugins.oidc.settings import OidcSettings
from portal_core.config import describe, read_section

COMPLETE = {"POCKET_ID_ISSUER": "https://id.example.com", "POCKET_ID_CLIENT_ID": "abc",
            "POCKET_ID_CLIENT_SECRET": "s3cret"}


def test_every_missing_setting_is_reported_at_once():
    settings, problems = read_section(OidcSettings, {}, dev_mode=False)
    assert settings is None
    assert sorted(p.variable for p in problems) == ["POCKET_ID_CLIENT_ID", "POCKET_ID_CLIENT_SECRET", "POCKET_ID_ISSUER"]
    assert all(p.hint for p in problems)


def test_malformed_settings_are_reported_together_and_name_the_fix():
    env = dict(COMPLETE, POCKET_ID_ISSUER="id.example.com", POCKET_ID_SCOPES="profile email",
               POCKET_ID_TIMEOUT="0", POCKET_ID_CLOCK_SKEW="soon")
    _settings, problems = read_section(OidcSettings, env, dev_mode=False)
    by_name = {p.variable: p.problem for p in problems}
    assert set(by_name) == {"POCKET_ID_ISSUER", "POCKET_ID_SCOPES", "POCKET_ID_TIMEOUT", "POCKET_ID_CLOCK_SKEW"}
    assert "https://" in by_name["POCKET_ID_ISSUER"]
    assert "openid" in by_name["POCKET_ID_SCOPES"]


def test_the_discovery_url_is_refused_as_an_issuer():
    env = dict(COMPLETE, POCKET_ID_ISSUER="https://id.example.com/.well-known/openid-configuration")
    _settings, problems = read_section(OidcSettings, env, dev_mode=False)
    assert [p.variable for p in problems] == ["POCKET_ID_ISSUER"]


def test_defaults_apply_and_the_secret_is_never_shown():
    settings, problems = read_section(OidcSettings, COMPLETE, dev_mode=False)
    assert problems == []
    assert settings.scopes == "openid profile email groups"
    assert (settings.admin_group, settings.timeout, settings.clock_skew) == ("", 10, 60)
    shown = dict(describe(settings))
    assert shown["POCKET_ID_CLIENT_SECRET"] == "********"
    assert "s3cret" not in repr(shown)


def test_the_backend_is_offered_as_oidc_without_importing_authlib():
    backend = portal_auth_backend()
    assert backend.name == "oidc" and backend.settings is OidcSettings and not backend.development_only
    # Selecting another backend must not pay for authlib/joserfc: the plugin module imports neither.
    code = "import sys, portal_plugins.oidc; print(sorted(m for m in ('authlib', 'joserfc') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_open_yields_an_oidc_auth_whose_session_closes_at_shutdown():
    settings, _ = read_section(OidcSettings, COMPLETE, dev_mode=False)
    from portal_core.backends import BackendContext

    async with portal_auth_backend().open(BackendContext(settings=settings, core=None, pool=None)) as auth:
        assert auth.name == "oidc" and auth.client_id == "abc"
        assert auth.form_action_origins == ("https://id.example.com",)
        session: aiohttp.ClientSession = auth.session
        assert not session.closed
    assert session.closed
