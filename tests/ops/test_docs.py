"""docs/operations.md stays true: every command in its `sh` blocks is run here (or by the test named for it),
and its list of settings required in production is exactly what the portal requires."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import attrs

from portal_core.backends import PRODUCTION_DEFAULTS, offered
from portal_core.config import fields_of
from portal_core.plugins import make_plugin_manager
from portal_core.settings import CoreSettings
from tests.support.portal import PORTAL_BIN

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "operations.md"
NOT_RUN = "# not run by the tests: no Docker engine here"
NO_CLUSTER = "# not run by the tests: no Kubernetes cluster here"
# Commands too long to run inline, and the test that runs them with the same arguments.
ELSEWHERE = {
    "scripts/build-image --local-base --tag portal:latest": (REPO / "tests/ops/test_image.py", '"--local-base"'),
    "kubectl kustomize deploy/kubernetes/overlays/production": (REPO / "tests/ops/test_kubernetes.py",
                                                                '"kustomize", str(DEPLOY / "overlays" / overlay)'),
}
RUN_HERE = ("portal ", "cp ")


def sh_commands() -> list[str]:
    commands, inside = [], False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```sh" if not inside else False
            continue
        if inside and line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    return commands


def test_every_documented_command_is_exercised() -> None:
    commands = sh_commands()
    assert len(commands) >= 8, commands
    for command in commands:
        if command.startswith(RUN_HERE):
            continue
        if command.startswith("docker "):
            assert command.endswith(NOT_RUN), f"{command!r} must say it is not run here"
            continue
        if command.endswith(NO_CLUSTER):
            assert command.startswith("kubectl "), f"{command!r}: only cluster commands may go unrun"
            continue
        assert command in ELSEWHERE, f"{command!r} is neither run by test_docs nor mapped to the test that runs it"
        test_file, evidence = ELSEWHERE[command]
        assert evidence in test_file.read_text(), f"{test_file} no longer runs {command!r}"
    assert not [c for c in commands if NOT_RUN in c and not c.startswith("docker ")]
    # The manifests the unrun cluster commands apply are rendered and validated by test_kubernetes.
    overlays = {m for c in commands if c.endswith(NO_CLUSTER) for m in re.findall(r"-k (\S+)", c)}
    assert overlays and all((REPO / o / "kustomization.yaml").is_file() for o in overlays), overlays


def test_documented_commands_run_and_succeed(dev_portal, api_token, database_url, tmp_path) -> None:
    shutil.copy(REPO / ".env.example", tmp_path / ".env.example")
    env = {"PATH": f"{PORTAL_BIN.parent}:/usr/bin:/bin", "HOME": str(tmp_path), "DEV_MODE": "true",
           "DATABASE_URL": database_url, "PORT": str(dev_portal.port), "PORTAL_URL": dev_portal.url,
           "PORTAL_SMOKE_TOKEN": api_token}
    ran = []
    for command in sh_commands():
        if not command.startswith(RUN_HERE):
            continue
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, f"{command!r} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        ran.append(command)
    assert {"portal check-config", "portal schema apply", "portal healthcheck"} <= set(ran)
    assert any(c.startswith("portal smoke") for c in ran)


def test_required_settings_list_matches_what_production_requires() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("<!-- required-begin -->", 1)[1].split("<!-- required-end -->", 1)[0]
    documented = {name for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", section)}
    pm = make_plugin_manager()
    classes = [CoreSettings]
    for service, backends in offered(pm).items():
        classes += [b.settings for _p, b in backends if b.name == PRODUCTION_DEFAULTS[service] and b.settings]
    required = {meta["env"] for cls in classes for field, meta in fields_of(cls)
                if not meta["prefix"] and meta["default"] is attrs.NOTHING}
    assert documented == required, f"documented but not required: {documented - required}; " \
                                   f"required but not documented: {required - documented}"
