"""Fresh virtualenvs for the plugin-kit tests: a wheel of this checkout, and venvs with only what a test names.

A plugin author installs ``portal[testing]`` from an index and nothing of this repository; these tests do
the same with a wheel built from a copy of the checkout (not an editable install, so nothing here leaks in).
uv (tests/setup.d/kit.sh) makes and fills a venv in seconds from its cache; the wheel is built once a session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UV = REPO / ".venvs" / "uv" / "bin" / "uv"
SOURCES = ("pyproject.toml", "README.md", "schema.sql", "assets", "portal_core", "plugins")
# What a subprocess in a fresh venv may inherit: nothing that points back into this checkout's venv.
KEEP_ENV = ("HOME", "LANG", "LC_ALL", "TMPDIR", "PORTAL_TEST_DATABASE_URL", "PIP_CERT", "PIP_FIND_LINKS",
            "PIP_DEFAULT_TIMEOUT", "SSL_CERT_FILE", "UV_CACHE_DIR", "XDG_CACHE_HOME")


def run(args: Sequence[str | Path], what: str, *, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; fail the test with its output when it does not exit 0."""
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}): {' '.join(map(str, args))}\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}", pytrace=False)
    return result


def uv() -> Path:
    if not UV.exists():
        pytest.fail(f"{UV} is missing: run tests/setup.d/kit.sh (scripts/test does)", pytrace=False)
    return UV


def build_wheel(workdir: Path) -> Path:
    """A wheel of this checkout, built from a copy of its sources (the checkout itself stays untouched)."""
    tree = workdir / "src"
    tree.mkdir(parents=True)
    for top in SOURCES:
        source = REPO / top
        if source.is_dir():
            shutil.copytree(source, tree / top, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules"))
        else:
            shutil.copy2(source, tree / top)
    built = run([uv(), "build", "--wheel", "--out-dir", workdir / "dist", tree], "building the portal's wheel")
    (wheel,) = (workdir / "dist").glob("portal-*.whl")
    # What the build said (setuptools' warnings among it), for tests/ops/test_packaging.py.
    wheel.with_suffix(".log").write_text(built.stdout + built.stderr)
    return wheel


def clean_env(venv: Path, **extra: str) -> dict[str, str]:
    """An environment for commands in ``venv``: its bin first on PATH, nothing from this checkout's venv."""
    env = {key: os.environ[key] for key in KEEP_ENV if key in os.environ}
    env.update(PATH=f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", VIRTUAL_ENV=str(venv), **extra)
    return env


def fresh_venv(venv: Path, *requirements: str) -> Path:
    """A new virtualenv at ``venv`` (with pip, as python -m venv makes one) holding only ``requirements``
    and their dependencies; returns its python."""
    run([uv(), "venv", "--quiet", "--seed", "--python", sys.executable, venv], "making a virtualenv")
    python = venv / "bin" / "python"
    if requirements:
        run([uv(), "pip", "install", "--quiet", "--python", python, *requirements], f"installing {requirements}",
            env={**os.environ, "VIRTUAL_ENV": str(venv)})
    return python


@pytest.fixture(scope="session")
def portal_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The portal built as a wheel from this checkout, once a session."""
    return build_wheel(tmp_path_factory.mktemp("portal-wheel"))
