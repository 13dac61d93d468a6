"""No secret part of a setting is ever printed: check-config, configuration errors, "database unreachable",
log lines and tracebacks all go through one masking function (portal_core/redact.py)."""

from __future__ import annotations

import io
import json
import logging
import subprocess

import pytest

from portal_core.logs import JsonFormatter, TextFormatter
from portal_core.redact import mask, secret_parts
from tests.support.portal import PORTAL_BIN, free_port

SECRET = "Hunter2Secret"

# (URL, what must still be readable once masked)
URLS = [
    (f"postgresql://portal:{SECRET}@db.internal:5432/portal", "postgresql://portal:***@db.internal:5432/portal"),
    (f"postgresql://portal:{SECRET}@db.internal:notaport/portal", "postgresql://portal:***@db.internal:notaport/portal"),
    (f"postgresql://portal:{SECRET}@/portal", "postgresql://portal:***@/portal"),
    (f"postgresql://:{SECRET}@db.internal/portal", "postgresql://:***@db.internal/portal"),
    (f"postgresql://portal:p%40{SECRET}%2F@db.internal/portal", "postgresql://portal:***@db.internal/portal"),
    (f"postgresql://portal:p@{SECRET}@db.internal/portal", "postgresql://portal:***@db.internal/portal"),
    (f"postgresql://portal:a/b#{SECRET}@db.internal/portal", "postgresql://portal:***@db.internal/portal"),
    (f"postgresql://portal@db.internal/portal?password={SECRET}&sslmode=require",
     "postgresql://portal@db.internal/portal?password=***&sslmode=require"),
    (f"postgresql://portal@db.internal/portal?sslmode=require&sslpassword={SECRET}",
     "postgresql://portal@db.internal/portal?sslmode=require&sslpassword=***"),
    (f"postgresql://portal:{SECRET}@[::1/portal", "postgresql://portal:***@[::1/portal"),
    (f"host=db.internal password={SECRET} dbname=portal", "host=db.internal password=*** dbname=portal"),
    (f"host=db.internal password='{SECRET} x' dbname=portal", "host=db.internal password=*** dbname=portal"),
    (f"https://hooks.example/in?token={SECRET}&x=1", "https://hooks.example/in?token=***&x=1"),
    (f"https://bucket.example/k?X-Amz-Credential=AKIA/1&X-Amz-Signature={SECRET}",
     "https://bucket.example/k?X-Amz-Credential=***&X-Amz-Signature=***"),
    (f"https://ops:{SECRET}@portal.example.com", "https://ops:***@portal.example.com"),
    ("https://portal.example.com/x?e=a:b@c&page=2", "https://portal.example.com/x?e=a:b@c&page=2"),
]


@pytest.mark.parametrize("url, expected", URLS)
def test_mask_hides_every_secret_part_and_keeps_the_rest(url, expected) -> None:
    masked = mask(url, secret_parts(url))
    assert masked == expected
    assert SECRET not in masked


@pytest.mark.parametrize("url", [url for url, _ in URLS if SECRET in url])
def test_a_message_quoting_the_password_alone_is_masked_too(url) -> None:
    # libpq quotes a bad percent escape alone: 'invalid percent-encoded token: "p%zzHunter2Secret"'.
    parts = secret_parts(url)
    assert any(SECRET in part for part in parts), parts
    for part in parts:
        assert part not in mask(f'invalid dsn: invalid percent-encoded token: "{part}"', parts)


def check_config(env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DEV_MODE": "true"}
    return subprocess.run([str(PORTAL_BIN), "check-config"], env={**base, **env}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("url", [
    f"postgresql://portal:{SECRET}@db.internal:notaport/portal",
    f"postgresql://portal:{SECRET}@db.internal:99999/portal",
    f"postgresql://portal:p%zz{SECRET}@db.internal/portal",
    f"postgresql://portal:{SECRET}@[::1/portal",
    f"postgresql://portal@db.internal/portal?password={SECRET}&nonsense=1",
    f"mysql://portal:{SECRET}@db.internal/portal",
])
def test_a_malformed_database_url_is_refused_without_its_password(url, tmp_path) -> None:
    result = check_config({"DATABASE_URL": url}, tmp_path)
    assert result.returncode == 78, result.stdout + result.stderr
    assert "DATABASE_URL:" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_a_short_password_libpq_quotes_alone_is_masked_too(tmp_path) -> None:
    result = check_config({"DATABASE_URL": "postgresql://portal:p%zz9@db.internal/portal"}, tmp_path)
    assert result.returncode == 78 and "invalid percent-encoded token" in result.stderr, result.stderr
    assert "p%zz9" not in result.stdout + result.stderr


@pytest.mark.parametrize("url", [
    f"postgresql://portal@db.internal/portal?password={SECRET}",
    f"postgresql://portal:p%40{SECRET}@db.internal/portal",
    f"postgresql://portal:{SECRET}@/portal",
])
def test_check_config_prints_a_database_url_without_its_password(url, tmp_path) -> None:
    result = check_config({"DATABASE_URL": url, "APP_BASE_URL": f"http://ops:{SECRET}@127.0.0.1:8080"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "DATABASE_URL=postgresql://portal" in result.stdout and "db.internal" in result.stdout or "@/portal" in result.stdout
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("how", ["userinfo", "query"])
def test_database_unreachable_says_so_without_the_password(how, tmp_path) -> None:
    port = free_port()
    url = (f"postgresql://portal:{SECRET}@127.0.0.1:{port}/portal" if how == "userinfo"
           else f"postgresql://portal@127.0.0.1:{port}/portal?password={SECRET}&connect_timeout=1")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DEV_MODE": "true", "DATABASE_URL": url,
           "DATABASE_CONNECT_TIMEOUT": "1", "PORT": str(free_port())}
    result = subprocess.run([str(PORTAL_BIN), "serve"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 69, result.stdout + result.stderr
    assert "unreachable" in result.stderr and f"127.0.0.1:{port}" in result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("formatter", [TextFormatter, JsonFormatter])
def test_log_lines_and_tracebacks_never_carry_a_secret(formatter) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(secrets=("sk_live_" + SECRET,)))
    log = logging.getLogger("portal.test-masking")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("connecting to %s", f"postgresql://portal:{SECRET}@db/portal")
        try:
            raise RuntimeError(f"provider said: bad key sk_live_{SECRET} for https://x.example/?api_key={SECRET}")
        except RuntimeError:
            log.exception("it failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "postgresql://portal:***@db/portal" in text and "RuntimeError" in text
    assert SECRET not in text
    if formatter is JsonFormatter:
        assert all(json.loads(line) for line in text.splitlines() if line.startswith("{"))


def test_an_unexpected_error_in_a_command_is_printed_without_a_password(monkeypatch, capsys) -> None:
    from portal_core import cli

    def broken(_args) -> int:
        raise RuntimeError(f"could not use postgresql://portal:{SECRET}@db.internal/portal?sslpassword={SECRET}")

    monkeypatch.setenv("DEV_MODE", "true")
    monkeypatch.setattr(cli, "cmd_check_config", broken)
    assert cli.main(["check-config"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: could not use postgresql://portal:***@db.internal" in err
    assert SECRET not in err
