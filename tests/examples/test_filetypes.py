"""examples/portal-filetypes, a third-party plugin as its own distribution: installed from its folder into a
clean virtualenv holding only `portal[testing]` (the portal from a wheel of this checkout), where its own
tests — written only against portal_core.testing — must pass. A failure there fails this test, and so the
README's test command."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support.venvs import REPO, clean_env, fresh_venv, run, uv

EXAMPLE = REPO / "examples" / "portal-filetypes"


@pytest.mark.slow
def test_the_filetypes_example_passes_its_own_tests_in_a_clean_environment(portal_wheel, tmp_path):
    venv = tmp_path / "venv"
    fresh_venv(venv, f"portal[testing] @ {portal_wheel.as_uri()}")
    env = clean_env(venv)
    # A copy, so building it leaves nothing in the checkout.
    folder = shutil.copytree(EXAMPLE, tmp_path / "portal-filetypes",
                             ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    run([uv(), "pip", "install", "--quiet", "--python", venv / "bin" / "python", folder],
        "installing examples/portal-filetypes", env={**env, "VIRTUAL_ENV": str(venv)})
    report = json.loads(run([venv / "bin" / "portal", "plugins", "--json"], "portal plugins",
                            env={**env, "DEV_MODE": "true"}, cwd=tmp_path).stdout)
    (row,) = [p for p in report["plugins"] if p["name"] == "filetypes"]
    assert row["distribution"] == "portal-filetypes" and "portal_check_upload" in row["hooks"]
    assert report["warnings"] == []
    tested = subprocess.run([venv / "bin" / "pytest", folder, "-q", "-p", "no:cacheprovider"], env=env, cwd=folder,
                            capture_output=True, text=True, timeout=600)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert "4 passed" in tested.stdout
