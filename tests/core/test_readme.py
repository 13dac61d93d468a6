"""The README's first two commands: scripts/dev runs the portal in DEV_MODE; scripts/test is what CI runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.support.portal import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert [b.strip() for b in blocks[:2]] == ["scripts/dev", "scripts/test"]
    assert "exec scripts/test\n" in (ROOT / ".ci" / "run").read_text()


def test_scripts_dev_serves_the_portal_in_dev_mode(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEV_MODE")}
    env.update(PORT=str(port), PORTAL_DATA_DIR=str(tmp_path / "data"))
    log = open(tmp_path / "dev.log", "wb")
    process = subprocess.Popen([str(ROOT / "scripts" / "dev")], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as response:
            page = response.read().decode()
        assert 'data-dev-mode="true"' in page
        meta = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta").read().decode()
        assert '"dev_mode": true' in meta and '"auth_backend": "dev"' in meta
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        log.close()
    text = (tmp_path / "dev.log").read_text()
    assert "throwaway PostgreSQL" in text and "stopped the throwaway PostgreSQL" in text
    # pytest's tmp_path sits under a private directory, so the cluster lived in the fallback place.
    moved = re.search(r"keeping the throwaway cluster in (\S+) instead", text)
    if moved:
        shutil.rmtree(moved.group(1), ignore_errors=True)
