"""The configuration check: everything missing or malformed, reported at once; exit 78; secrets hidden."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from portal_core.config import ConfigError
from portal_core.plugins import make_plugin_manager
from portal_core.settings import load_config

PORTAL = str(Path(sys.executable).with_name("portal"))
PRODUCTION_REQUIRED = [
    "APP_BASE_URL", "DATABASE_URL", "POCKET_ID_ISSUER", "POCKET_ID_CLIENT_ID", "POCKET_ID_CLIENT_SECRET",
    "R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET_NAME",
    "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_ID_PRO",
]
FULL_PRODUCTION = {
    "APP_BASE_URL": "https://portal.example.com", "DATABASE_URL": "postgresql://app:hunter2@db:5432/portal",
    "POCKET_ID_ISSUER": "https://id.example.com", "POCKET_ID_CLIENT_ID": "portal",
    "POCKET_ID_CLIENT_SECRET": "oidc-SECRET-value", "R2_ACCOUNT_ID": "acc", "R2_ACCESS_KEY_ID": "key",
    "R2_SECRET_ACCESS_KEY": "r2-SECRET-value", "R2_BUCKET_NAME": "artifacts",
    "STRIPE_SECRET_KEY": "sk_test_SECRETvalue", "STRIPE_WEBHOOK_SECRET": "whsec_SECRETvalue",
    "STRIPE_PRICE_ID_PRO": "price_pro", "STRIPE_PRICE_ID_TEAM": "price_team",
}


def run_portal_cmd(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PORTAL, *args], env={"PATH": "/usr/bin:/bin", **env}, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_production_with_nothing_set_exits_78_naming_every_required_variable(tmp_path):
    result = run_portal_cmd(env={}, cwd=tmp_path)
    assert result.returncode == 78
    for variable in PRODUCTION_REQUIRED:
        assert variable in result.stderr, variable
    assert "12 configuration problems" in result.stderr
    assert not (tmp_path / ".portal-data").exists()  # nothing was touched


def test_empty_strings_count_as_missing(tmp_path):
    result = run_portal_cmd(env={**FULL_PRODUCTION, "STRIPE_SECRET_KEY": "", "R2_BUCKET_NAME": "  "}, cwd=tmp_path)
    assert result.returncode == 78
    assert "STRIPE_SECRET_KEY: is missing" in result.stderr and "R2_BUCKET_NAME: is missing" in result.stderr
    assert "2 configuration problems" in result.stderr


def test_malformed_values_are_named_with_hints_and_secrets_never_printed(tmp_path):
    env = {**FULL_PRODUCTION, "PORT": "eighty", "APP_BASE_URL": "portal.example.com", "LOG_FORMAT": "xml",
           "STRIPE_SECRET_KEY": ""}
    result = run_portal_cmd("check-config", env=env, cwd=tmp_path)
    assert result.returncode == 78
    assert "PORT: is malformed: expected a whole number, got 'eighty'" in result.stderr
    assert "APP_BASE_URL" in result.stderr and "https://" in result.stderr
    assert "LOG_FORMAT" in result.stderr and "STRIPE_SECRET_KEY" in result.stderr
    output = result.stdout + result.stderr
    for secret in ("oidc-SECRET-value", "r2-SECRET-value", "whsec_SECRETvalue", "hunter2"):
        assert secret not in output


def test_check_config_prints_the_effective_configuration_redacted(tmp_path):
    result = run_portal_cmd("check-config", env=FULL_PRODUCTION, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "DATABASE_URL=postgresql://app:***@db:5432/portal" in out
    assert "STRIPE_PRICE_ID_TEAM=price_team" in out and "HOST=0.0.0.0" in out
    for secret in ("oidc-SECRET-value", "r2-SECRET-value", "whsec_SECRETvalue", "sk_test_SECRETvalue", "hunter2"):
        assert secret not in out
    assert "auth: oidc" in out and "storage: r2" in out and "billing: stripe" in out


def test_dev_mode_needs_no_provider_settings_and_binds_loopback(tmp_path):
    result = run_portal_cmd("check-config", env={"DEV_MODE": "true"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "HOST=127.0.0.1" in result.stdout and "auth: dev" in result.stdout


def test_dotenv_file_is_read_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("# local settings\nDEV_MODE=true\nPORT=9001\nexport LOG_LEVEL='DEBUG'\n")
    result = run_portal_cmd("check-config", env={"PORT": "9002"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "PORT=9002" in result.stdout and "LOG_LEVEL=DEBUG" in result.stdout and "DEV_MODE=True" in result.stdout


def test_production_refuses_a_development_backend():
    with pytest.raises(ConfigError) as error:
        load_config({**FULL_PRODUCTION, "STORAGE_BACKEND": "dev"}, make_plugin_manager())
    assert "STORAGE_BACKEND: 'dev' is a development-only storage backend and DEV_MODE is off" in str(error.value)


def test_unknown_backend_names_the_candidates():
    with pytest.raises(ConfigError) as error:
        load_config({"DEV_MODE": "true", "STORAGE_BACKEND": "s3"}, make_plugin_manager())
    assert "no plugin offers a storage backend named 's3'" in str(error.value)
    assert "choose one of: dev, r2" in str(error.value)


def test_only_the_selected_backends_settings_are_required():
    config = load_config({**{k: v for k, v in FULL_PRODUCTION.items() if not k.startswith("R2_")},
                          "STORAGE_BACKEND": "r2", "R2_ACCOUNT_ID": "a", "R2_ACCESS_KEY_ID": "b",
                          "R2_SECRET_ACCESS_KEY": "c", "R2_BUCKET_NAME": "d"}, make_plugin_manager())
    assert config.selections["storage"].backend.name == "r2"
    with pytest.raises(ConfigError) as error:
        load_config({"DEV_MODE": "true", "BILLING_BACKEND": "stripe"}, make_plugin_manager())
    message = str(error.value)
    assert "STRIPE_SECRET_KEY" in message and "R2_" not in message and "POCKET_ID" not in message


def test_plan_limits_come_from_the_environment():
    config = load_config({"DEV_MODE": "true", "PLAN_FREE_MAX_FILE": "5MiB", "PLAN_PRO_QUOTA": "2 GiB"},
                         make_plugin_manager())
    assert config.core.limits("free").max_file == 5 * 1024**2
    assert config.core.limits("free").quota == 1024**3
    assert config.core.limits("pro").quota == 2 * 1024**3
    assert config.core.limits("pro").max_file == 5 * 1024**3
    with pytest.raises(ConfigError) as error:
        load_config({"DEV_MODE": "true", "PLAN_FREE_QUOTA": "lots"}, make_plugin_manager())
    assert "PLAN_FREE_QUOTA" in str(error.value)


def test_help_explains_configuration_dev_mode_and_exit_codes(tmp_path):
    result = run_portal_cmd("--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    out = result.stdout
    assert "environment" in out and ".env" in out and "DEV_MODE=true" in out
    for code, meaning in (("78", "configuration"), ("69", "database"), ("0", "success")):
        assert any(line.strip().startswith(code) and meaning in line for line in out.splitlines()), (code, out)


def test_missing_configuration_suggests_dev_mode_and_notes_empty_values_once(tmp_path):
    result = run_portal_cmd(env={}, cwd=tmp_path)
    assert result.returncode == 78
    assert result.stderr.count("empty value counts as missing") == 1
    assert "set DEV_MODE=true" in result.stderr
    assert "the portal cannot start" in result.stderr


def test_check_config_says_the_portal_would_refuse_to_start(tmp_path):
    result = run_portal_cmd("check-config", env={"DEV_MODE": "true", "PORT": "eighty"}, cwd=tmp_path)
    assert result.returncode == 78
    assert "would refuse to start" in result.stderr and "cannot start" not in result.stderr
    assert "empty value" not in result.stderr  # nothing was missing, so no note about empty values
    assert "set DEV_MODE=true" not in result.stderr  # it is already on
