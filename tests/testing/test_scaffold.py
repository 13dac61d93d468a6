"""`portal new-plugin`: the package it writes passes its own tests, out of the box, in a fresh virtualenv
holding nothing but `portal[testing]` (the portal installed from a wheel of this checkout, not editable) —
installed the way its README says: `pip install -e D && pytest D`."""

from __future__ import annotations

import json
import subprocess

import pytest

from portal_core.hookspecs import HOOKS_VERSION
from tests.support.venvs import clean_env, fresh_venv, run


@pytest.mark.slow
def test_the_generated_plugin_passes_its_own_tests_in_a_fresh_virtualenv(portal_wheel, tmp_path):
    venv = tmp_path / "venv"
    fresh_venv(venv, f"portal[testing] @ {portal_wheel.as_uri()}")
    env = clean_env(venv)
    installed = run([venv / "bin" / "python", "-m", "pip", "list", "--format=json"], "pip list", env=env).stdout
    names = {item["name"].lower() for item in json.loads(installed)}
    assert {"portal", "pytest", "pytest-aiohttp"} <= names and not names & {"standardwebhooks", "playwright"}
    plugin = tmp_path / "virus-scan"
    made = run([venv / "bin" / "portal", "new-plugin", "virus-scan", "--dir", plugin], "portal new-plugin",
               env=env, cwd=tmp_path)
    assert f"pip install -e '{plugin}[test]'" in made.stdout
    run([venv / "bin" / "pip", "install", "--quiet", "-e", plugin], "pip install -e the plugin", env=env, cwd=tmp_path)
    listing = run([venv / "bin" / "portal", "plugins", "--json"], "portal plugins",
                  env={**env, "DEV_MODE": "true"}, cwd=tmp_path).stdout
    report = json.loads(listing)
    (row,) = [p for p in report["plugins"] if p["name"] == "virus-scan"]
    assert row["distribution"] == "portal-virus-scan" and row["requires_hooks"] == HOOKS_VERSION
    assert {"portal_config_sections", "portal_event", "portal_routes", "portal_schema_sql"} <= set(row["hooks"])
    assert report["warnings"] == []
    tested = subprocess.run([venv / "bin" / "pytest", plugin, "-q", "-p", "no:cacheprovider"], env=env, cwd=plugin,
                            capture_output=True, text=True, timeout=600)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert "4 passed" in tested.stdout


def test_new_plugin_refuses_a_bad_name_and_an_occupied_directory(tmp_path):
    from tests.support.portal import PORTAL_BIN

    def new_plugin(*args):
        return subprocess.run([PORTAL_BIN, "new-plugin", *args], capture_output=True, text=True, cwd=tmp_path,
                              timeout=60, env={"PATH": "/usr/bin:/bin"})

    bad = new_plugin("Virus Scan")
    assert bad.returncode == 2 and "'Virus Scan' is not a plugin name" in bad.stderr
    assert list(tmp_path.iterdir()) == []
    # Names that would clash with what is installed: a built-in plugin's (never loaded: pluggy keeps the
    # first of two entry points with one name), or a package it would shadow (portal_core, portal_plugins).
    for name, why in (("webhooks", "the installed plugin 'webhooks'"), ("dev-stubs", "the installed plugin 'dev_stubs'"),
                      ("core", "portal_core, like one already installed"),
                      ("plugins", "portal_plugins, like one already installed")):
        clash = new_plugin(name)
        assert clash.returncode == 2 and f"{name!r} is taken: " in clash.stderr and why in clash.stderr, clash.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    taken = new_plugin("scan", "--dir", "taken")
    assert taken.returncode == 73 and "taken already exists and is not an empty directory" in taken.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]
    made = new_plugin("scan")
    assert made.returncode == 0 and (tmp_path / "portal-scan" / "portal_scan" / "__init__.py").is_file()
    assert "pip install -e './portal-scan[test]'" in made.stdout
