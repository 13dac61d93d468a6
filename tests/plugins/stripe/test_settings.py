"""The Stripe settings section, read the way the core reads it, and the plugin's registration."""

from __future__ import annotations

import subprocess
import sys

import pytest

from portal_plugins.stripe import portal_billing_backend, portal_schema_sql
from portal_plugins.stripe.settings import StripeSettings
from portal_core.config import ConfigError, describe, read_section
from portal_core.plugins import make_plugin_manager
from portal_core.settings import load_config

REQUIRED = {
    "STRIPE_SECRET_KEY": "sk_test_abc123",
    "STRIPE_WEBHOOK_SECRET": "whsec_xyz789",
    "STRIPE_PRICE_ID_PRO": "price_pro123",
}


def read(**env: str):
    return read_section(StripeSettings, env, dev_mode=False)


def test_all_three_required_settings_are_reported_at_once_with_hints() -> None:
    settings, problems = read()
    assert settings is None
    by_name = {p.variable: p for p in problems}
    assert set(by_name) == {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_ID_PRO"}
    assert all("missing" in p.problem and p.hint for p in problems)


def test_production_config_with_stripe_selected_lists_every_missing_stripe_setting() -> None:
    env = {"APP_BASE_URL": "https://portal.example.com", "DATABASE_URL": "postgresql://db/portal",
           "AUTH_BACKEND": "dev", "STORAGE_BACKEND": "dev", "BILLING_BACKEND": "stripe", "DEV_MODE": "true"}
    with pytest.raises(ConfigError) as caught:
        load_config(env, make_plugin_manager())
    variables = {p.variable for p in caught.value.problems}
    assert {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_ID_PRO"} <= variables


def test_defaults_and_plans() -> None:
    settings, problems = read(**REQUIRED, STRIPE_PRICE_ID_TEAM="price_team456")
    assert problems == []
    assert settings.plan_prices() == {"pro": "price_pro123", "team": "price_team456"}
    assert settings.api_base is None
    assert (settings.webhook_tolerance, settings.health_cache_seconds, settings.timeout) == (300, 60, 10)


def test_optional_settings_are_read() -> None:
    settings, problems = read(**REQUIRED, STRIPE_API_BASE="http://127.0.0.1:12111", STRIPE_WEBHOOK_TOLERANCE="60",
                              STRIPE_HEALTH_CACHE_SECONDS="0", STRIPE_TIMEOUT="3")
    assert problems == []
    assert settings.api_base == "http://127.0.0.1:12111"
    assert (settings.webhook_tolerance, settings.health_cache_seconds, settings.timeout) == (60, 0, 3)


def test_malformed_values_name_the_variable_without_printing_secrets() -> None:
    _settings, problems = read(STRIPE_SECRET_KEY="pk_live_oops", STRIPE_WEBHOOK_SECRET="not-a-secret",
                               STRIPE_PRICE_ID_PRO="prod_123", STRIPE_API_BASE="ftp://x", STRIPE_TIMEOUT="0")
    by_name = {p.variable: str(p) for p in problems}
    assert set(by_name) == {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_ID_PRO", "STRIPE_API_BASE",
                            "STRIPE_TIMEOUT"}
    assert "sk_" in by_name["STRIPE_SECRET_KEY"] and "pk_live_oops" not in by_name["STRIPE_SECRET_KEY"]
    assert "whsec_" in by_name["STRIPE_WEBHOOK_SECRET"] and "not-a-secret" not in by_name["STRIPE_WEBHOOK_SECRET"]
    assert "prod_123" in by_name["STRIPE_PRICE_ID_PRO"]


def test_describe_hides_the_secrets() -> None:
    settings, _problems = read(**REQUIRED)
    shown = dict(describe(settings))
    assert shown["STRIPE_SECRET_KEY"] == shown["STRIPE_WEBHOOK_SECRET"] == "********"
    assert "sk_test_abc123" not in repr(describe(settings)) and "whsec_xyz789" not in repr(describe(settings))
    assert shown["STRIPE_PRICE_ID_PRO"] == "price_pro123"


def test_the_backend_is_offered_under_stripe_and_contributes_its_table() -> None:
    backend = portal_billing_backend()
    assert backend.name == "stripe" and backend.settings is StripeSettings and not backend.development_only
    assert "CREATE TABLE IF NOT EXISTS stripe_events" in portal_schema_sql(config=None)


def test_importing_the_plugin_does_not_import_the_stripe_library() -> None:
    code = "import sys, portal_plugins.stripe; print('stripe' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
