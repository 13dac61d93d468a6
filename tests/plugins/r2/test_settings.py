"""The R2 settings section, read the way the core reads it (portal_core.config.read_section)."""

from __future__ import annotations

import subprocess
import sys

from portal_plugins.r2 import portal_storage_backend
from portal_plugins.r2.settings import R2Settings
from portal_core.config import describe, read_section

REQUIRED = {
    "R2_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
    "R2_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "R2_SECRET_ACCESS_KEY": "very-secret-value",
    "R2_BUCKET_NAME": "artifacts",
}


def read(**env: str):
    return read_section(R2Settings, env, dev_mode=False)


def test_missing_variables_are_reported_together_with_hints() -> None:
    settings, problems = read(R2_ACCESS_KEY_ID="", R2_PART_SIZE="1MiB")
    assert settings is None
    by_name = {p.variable: p for p in problems}
    assert set(by_name) == {"R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET_NAME",
                            "R2_PART_SIZE"}
    assert all(p.hint for p in problems)
    assert "missing" in by_name["R2_BUCKET_NAME"].problem
    assert "5MiB" in by_name["R2_PART_SIZE"].problem


def test_defaults_suit_cloudflare_r2() -> None:
    settings, problems = read(**REQUIRED)
    assert problems == []
    assert settings.endpoint == "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
    assert settings.region == "auto"
    assert settings.addressing_style == "path"
    assert settings.presign_seconds == 300
    assert settings.part_size == settings.multipart_threshold == 8 * 1024 * 1024
    assert settings.health_timeout == 3.0


def test_optional_settings_are_read_and_converted() -> None:
    settings, problems = read(**REQUIRED, R2_ENDPOINT_URL="http://127.0.0.1:9000/", R2_REGION="us-east-1",
                              R2_ADDRESSING_STYLE="virtual", R2_PRESIGN_SECONDS="60", R2_PART_SIZE="16MiB",
                              R2_MULTIPART_THRESHOLD="32MiB", R2_HEALTH_TIMEOUT="1.5")
    assert problems == []
    assert settings.endpoint == "http://127.0.0.1:9000"
    assert (settings.region, settings.addressing_style, settings.presign_seconds) == ("us-east-1", "virtual", 60)
    assert (settings.part_size, settings.multipart_threshold) == (16 * 1024**2, 32 * 1024**2)
    assert settings.health_timeout == 1.5


def test_malformed_values_name_the_variable() -> None:
    _settings, problems = read(**{**REQUIRED, "R2_ACCOUNT_ID": "https://x.r2.cloudflarestorage.com"},
                               R2_ENDPOINT_URL="ftp://example", R2_ADDRESSING_STYLE="dns",
                               R2_PRESIGN_SECONDS="0", R2_PART_SIZE="6GiB", R2_MULTIPART_THRESHOLD="lots",
                               R2_HEALTH_TIMEOUT="soon")
    assert {p.variable for p in problems} == {
        "R2_ACCOUNT_ID", "R2_ENDPOINT_URL", "R2_ADDRESSING_STYLE", "R2_PRESIGN_SECONDS", "R2_PART_SIZE",
        "R2_MULTIPART_THRESHOLD", "R2_HEALTH_TIMEOUT"}


def test_secret_is_never_printed() -> None:
    settings, _ = read(**REQUIRED)
    rows = dict(describe(settings))
    assert rows["R2_SECRET_ACCESS_KEY"] == "********"
    assert "very-secret-value" not in repr(describe(settings))
    _settings, problems = read(**{**REQUIRED, "R2_SECRET_ACCESS_KEY": "   "})
    assert "very-secret-value" not in "".join(map(str, problems))


def test_plugin_offers_the_r2_backend_with_its_settings() -> None:
    backend = portal_storage_backend()
    assert backend.name == "r2"
    assert backend.settings is R2Settings
    assert not backend.development_only


def test_importing_the_plugin_does_not_import_aiobotocore() -> None:
    # The core imports every plugin at startup; only the selected backend may pay for its vendor library.
    code = "import sys, portal_plugins.r2, portal_plugins.r2.settings; print('aiobotocore' in sys.modules, 'botocore' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
