""".env.example documents every setting the core and the built-in plugins declare, and works as shipped."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from portal_core.backends import offered
from portal_core.config import fields_of, read_dotenv
from portal_core.plugins import make_plugin_manager
from portal_core.settings import CoreSettings
from tests.support.portal import PORTAL_BIN

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
ASSIGNMENT = re.compile(r"^#?([A-Z][A-Z0-9_]*)=")


def declared_settings() -> dict[str, bool]:
    """{variable or prefix: is it a prefix} for the core and every built-in plugin's sections."""
    pm = make_plugin_manager()
    classes = [CoreSettings]
    for backends in offered(pm).values():
        classes += [backend.settings for _plugin, backend in backends if backend.settings is not None]
    for sections in pm.hook.portal_config_sections():
        classes += [section.settings for section in sections or ()]
    return {meta["env"]: meta["prefix"] for cls in classes for _field, meta in fields_of(cls)}


def documented() -> list[tuple[str, str]]:
    """(variable, the comment line just above it) for every VAR= or #VAR= line."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    found = []
    for index, line in enumerate(lines):
        match = ASSIGNMENT.match(line)
        if match:
            above = lines[index - 1] if index else ""
            found.append((match.group(1), above))
    return found


def test_every_declared_setting_is_in_env_example() -> None:
    settings = declared_settings()
    assert len(settings) > 30, "the walk over the settings classes found too few to be right"
    names = [name for name, _comment in documented()]
    missing = [env for env, prefix in settings.items()
               if not (any(n.startswith(env) for n in names) if prefix else env in names)]
    assert not missing, f".env.example lacks {missing}"


def test_env_example_names_no_setting_that_does_not_exist() -> None:
    settings = declared_settings()
    prefixes = [env for env, prefix in settings.items() if prefix]
    unknown = [name for name, _ in documented() if name not in settings and not name.startswith(tuple(prefixes))]
    assert not unknown, f".env.example names settings nobody reads: {unknown}"


def test_every_variable_has_a_one_line_comment() -> None:
    bare = [name for name, comment in documented() if not comment.startswith("# ")]
    assert not bare, f"no comment line above {bare}"


def test_env_example_as_shipped_is_a_valid_dev_mode_configuration(tmp_path) -> None:
    assert read_dotenv(EXAMPLE).get("DEV_MODE") == "true"
    shutil.copy(EXAMPLE, tmp_path / ".env")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([str(PORTAL_BIN), "check-config"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration OK (DEV_MODE)" in result.stdout
