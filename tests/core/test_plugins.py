"""Plugin discovery, selection, the `portal plugins` report, every hook, and the integrator's path."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import attrs
import pluggy
import pytest
from aiohttp import web

from portal_core import hookimpl, hookspecs
from portal_core.backends import Backend
from portal_core.config import ConfigError, ConfigSection, setting
from portal_core.plugins import make_plugin_manager
from portal_core.settings import load_config
from tests.support.db import create_token, create_user, run_sql
from tests.support.portal import run_portal

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "plugins" / "diskstore_example"
PORTAL = str(Path(sys.executable).with_name("portal"))
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("portal_"))


def test_every_hook_is_named_portal_and_documented_and_tested():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    # Implemented by a test plugin, or by a built-in plugin (each has its own test suite).
    tests = "".join(p.read_text() for folder in ("tests", "plugins") for p in (ROOT / folder).rglob("*.py"))
    for name in HOOKS:
        assert f"### `{name}" in docs, f"{name} has no section in docs/plugins.md"
        assert getattr(hookspecs, name).__doc__.strip(), f"{name} has no docstring"
        assert re.search(rf"def {name}\(", tests), f"no plugin under test implements {name}"


def test_a_misspelt_hookimpl_fails_loudly():
    class Typo:
        @hookimpl
        def portal_storage_backends(self):  # one letter too many
            return None

    with pytest.raises(pluggy.PluginValidationError, match="portal_storage_backends"):
        make_plugin_manager(extra=[Typo()])


def test_built_in_plugins_come_through_the_entry_point_group():
    pm = make_plugin_manager()
    names = {name for name, _plugin in pm.list_name_plugin()}
    assert {"dev_stubs", "oidc", "r2", "stripe"} <= names
    assert {dist.project_name for _plugin, dist in pm.list_plugin_distinfo()} >= {"portal"}


def test_disable_plugins_blocks_by_name():
    pm = make_plugin_manager(disabled=["r2"])
    assert pm.get_plugin("r2") is None
    with pytest.raises(ConfigError, match="no plugin offers a storage backend named 'r2'"):
        load_config({"DEV_MODE": "true", "STORAGE_BACKEND": "r2"}, pm)


def test_two_plugins_offering_the_same_name_is_a_startup_error_naming_both():
    class Impostor:
        @hookimpl
        def portal_storage_backend(self):
            return Backend(name="dev", open=contextlib.nullcontext)

    pm = make_plugin_manager(extra=[Impostor()])
    with pytest.raises(ConfigError) as error:
        load_config({"DEV_MODE": "true"}, pm)
    message = str(error.value)
    assert "2 plugins offer a storage backend named 'dev'" in message and "dev_stubs" in message


def test_heavy_libraries_load_only_for_the_selected_plugins(tmp_path, database_url):
    script = f"""
import asyncio, json, sys
from aiohttp import web
from portal_core.app import create_app
from portal_core.plugins import make_plugin_manager
from portal_core.settings import load_config
pm = make_plugin_manager()
config = load_config({{"DEV_MODE": "true", "DATABASE_URL": {database_url!r}, "PORTAL_DATA_DIR": {str(tmp_path)!r}}}, pm)
async def main():
    runner = web.AppRunner(create_app(config, pm))
    await runner.setup()
    await runner.cleanup()
asyncio.run(main())
print(json.dumps(sorted(m for m in ("stripe", "aiobotocore", "botocore", "authlib", "joserfc") if m in sys.modules)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_portal_plugins_reports_plugins_versions_hooks_and_why_each_backend(tmp_path):
    result = subprocess.run([PORTAL, "plugins"], env={"PATH": "/usr/bin:/bin", "DEV_MODE": "true",
                                                      "BILLING_BACKEND": "stripe"},
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    out = result.stdout
    assert result.returncode == 0, result.stderr
    for name in ("dev_stubs", "oidc", "r2", "stripe"):
        assert re.search(rf"^  {name}  \(portal \d", out, re.M), name
    assert "portal_storage_backend" in out and "portal_schema_sql" in out
    assert "storage: dev from plugin dev_stubs — default for DEV_MODE (STORAGE_BACKEND not set)" in out
    assert "billing: stripe from plugin stripe — BILLING_BACKEND=stripe" in out


def test_a_third_party_storage_plugin_is_selected_by_config_and_serves_uploads(database_url, tmp_path):
    root = tmp_path / "disk"
    env = {"PYTHONPATH": str(EXAMPLE), "STORAGE_BACKEND": "diskstore", "DISKSTORE_ROOT": str(root)}
    listing = subprocess.run([PORTAL, "plugins"], env={"PATH": "/usr/bin:/bin", "DEV_MODE": "true", **env},
                             cwd=tmp_path, capture_output=True, text=True, timeout=60).stdout
    assert "diskstore  (portal-diskstore-example 1.2.3)" in listing
    assert "storage: diskstore from plugin diskstore — STORAGE_BACKEND=diskstore" in listing

    token = create_token(database_url, create_user(database_url))
    data = os.urandom(200_000)
    with run_portal(database_url, env) as portal:
        boundary = "b"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n".encode()
                + data + f"\r\n--{boundary}--\r\n".encode())
        request = urllib.request.Request(portal.url + "/api/artifacts", data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(request) as response:
            artifact = json.load(response)
        assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
        assert [p.read_bytes() for p in root.iterdir()] == [data]
        request = urllib.request.Request(f"{portal.url}/api/artifacts/{artifact['id']}/download",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as response:
            assert response.read() == data
        health = json.load(urllib.request.urlopen(portal.url + "/health"))
        assert health["checks"]["storage"]["status"] == "ok"


def test_a_plugin_adds_a_portal_command(tmp_path):
    (tmp_path / "disk" / "7").mkdir(parents=True)
    (tmp_path / "disk" / "7" / "a").write_bytes(b"x" * 300)
    env = {"PATH": "/usr/bin:/bin", "DEV_MODE": "true", "PYTHONPATH": str(EXAMPLE), "STORAGE_BACKEND": "diskstore",
           "DISKSTORE_ROOT": str(tmp_path / "disk")}
    help_text = subprocess.run([PORTAL, "--help"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "diskstore-du" in help_text.stdout
    result = subprocess.run([PORTAL, "diskstore-du"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"1 file(s), 300 bytes in {tmp_path / 'disk'}"
    missing = subprocess.run([PORTAL, "diskstore-du"], env={**env, "DISKSTORE_ROOT": ""}, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 78 and "DISKSTORE_ROOT: is missing" in missing.stderr


def test_a_plugin_section_missing_is_reported_with_the_cores(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DEV_MODE": "true", "PYTHONPATH": str(EXAMPLE), "STORAGE_BACKEND": "diskstore",
           "PORT": "x"}
    result = subprocess.run([PORTAL, "check-config"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert "DISKSTORE_ROOT: is missing" in result.stderr and "PORT: is malformed" in result.stderr


@attrs.frozen
class GreeterSettings:
    greeting: str = setting("GREETER_GREETING", hint="what the greeter says")


class Recorder:
    """A test plugin implementing the remaining hooks, recording what the core did with them."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @hookimpl
    def portal_config_sections(self):
        return [ConfigSection("greeter", GreeterSettings)]

    @hookimpl
    def portal_routes(self, config):
        greeting = config.sections["greeter"].greeting

        async def hello(request):
            return web.json_response({"greeting": greeting})

        return [web.get("/hello", hello)]

    @hookimpl
    def portal_schema_sql(self, config):
        return "CREATE TABLE IF NOT EXISTS greeter_visits (id bigserial PRIMARY KEY);"

    @hookimpl
    def portal_startup(self, app):
        async def started():
            self.events.append("startup awaited")

        return started()

    @hookimpl
    def portal_shutdown(self, app):
        async def stopped():
            self.events.append("shutdown awaited")

        return stopped()

    @hookimpl
    def portal_auth_backend(self):
        return None  # a plugin may implement a hook and offer nothing


def test_two_plugins_with_one_config_section_name_are_refused_at_start():
    class Impostor:
        @hookimpl
        def portal_config_sections(self):
            return [ConfigSection("webhooks", GreeterSettings)]  # the built-in webhooks plugin's name

    pm = make_plugin_manager(extra=[Impostor()])
    with pytest.raises(TypeError, match="two plugins contribute the config section 'webhooks'"):
        load_config({"DEV_MODE": "true", "GREETER_GREETING": "hi"}, pm)


async def test_config_routes_schema_startup_and_shutdown_hooks(make_app, aiohttp_client, database_url):
    recorder = Recorder()
    with pytest.raises(ConfigError, match="GREETER_GREETING: is missing"):
        make_app(extra_plugins=[Recorder()])
    client = await aiohttp_client(make_app(extra_plugins=[recorder], GREETER_GREETING="hi"))
    assert recorder.events == ["startup awaited"]
    assert await (await client.get("/hello")).json() == {"greeting": "hi"}
    assert run_sql(database_url, "SELECT to_regclass('greeter_visits') IS NOT NULL") == [(True,)]
    plugins = run_sql(database_url, "SELECT plugins FROM schema_applies ORDER BY id DESC LIMIT 1")[0][0]
    assert plugins[0] == "schema.sql" and "plugin stripe" in plugins and "plugin webhooks" in plugins
    assert len(plugins) == 4  # core, stripe, webhooks, ours
    await client.close()
    assert recorder.events == ["startup awaited", "shutdown awaited"]
