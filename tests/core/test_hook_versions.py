"""Hook API stability: HOOKS_VERSION, plugins stating the version they need, and deprecating a hook through
pluggy's warn_on_impl before it is renamed or removed (docs/plugins.md, "Compatibility")."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import portal_core
from portal_core import HOOKS_VERSION, hookimpl
from portal_core.hookspecs import HookDeprecationWarning, deprecated, hookspec
from portal_core.plugins import compatibility_warnings, make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
PORTAL = str(Path(sys.executable).with_name("portal"))


def test_the_hooks_version_is_the_newest_in_the_changelog():
    assert re.fullmatch(r"\d+\.\d+", HOOKS_VERSION) and portal_core.HOOKS_VERSION == HOOKS_VERSION
    section = (ROOT / "docs" / "plugins.md").read_text().split("## Compatibility", 1)[1]
    versions = re.findall(r"^\| (\d+\.\d+) \|", section, re.M)
    assert versions[-1] == HOOKS_VERSION, f"docs/plugins.md's changelog ends at {versions[-1]}"


class RenamedSpecs:
    """A hook renamed in some hooks version: the new name, and the old one kept for a release, deprecated."""

    @hookspec
    def portal_demo_items(self, user):
        """The new name."""

    @deprecated(since="1.2", removed_in="2.0", replacement="portal_demo_items")
    def portal_demo_things(self, user):
        """The old name, still called for one release."""


class OldPlugin:
    @hookimpl
    def portal_demo_things(self, user):
        return ["old"]


class NewPlugin:
    @hookimpl
    def portal_demo_items(self, user):
        return ["new"]


def test_implementing_a_deprecated_hook_warns_naming_the_replacement_and_still_works():
    pm = make_plugin_manager()
    pm.add_hookspecs(RenamedSpecs)
    with pytest.warns(HookDeprecationWarning, match=r"portal_demo_things is deprecated since hooks 1\.2 and is "
                                                    r"removed in hooks 2\.0; implement portal_demo_items instead"):
        pm.register(OldPlugin(), name="old-plugin")
    # For that release the core calls both names, so the old plugin keeps working meanwhile.
    assert pm.hook.portal_demo_things(user=None) == [["old"]]
    assert compatibility_warnings(pm) == ["plugin old-plugin implements portal_demo_things, deprecated since hooks "
                                          "1.2 and removed in hooks 2.0; implement portal_demo_items instead"]


def test_implementing_the_new_name_warns_nothing(recwarn):
    pm = make_plugin_manager()
    pm.add_hookspecs(RenamedSpecs)
    pm.register(NewPlugin(), name="new-plugin")
    assert not [w for w in recwarn if issubclass(w.category, HookDeprecationWarning)]
    assert compatibility_warnings(pm) == []


class Requires:
    def __init__(self, version: str) -> None:
        self.PORTAL_REQUIRES_HOOKS = version


@pytest.mark.parametrize("needs, core, says", [
    ("1.2", "1.2", None),
    ("1.0", "1.2", None),
    ("1.3", "1.2", "plugin probe needs hooks 1.3, but this portal provides hooks 1.2: upgrade the portal"),
    ("2.0", "1.9", "plugin probe needs hooks 2.0, but this portal provides hooks 1.9"),
    ("1.4", "2.0", "plugin probe was written for hooks 1.x, and this portal provides hooks 2.0, which renamed"),
    ("latest", "1.2", "plugin probe: PORTAL_REQUIRES_HOOKS = 'latest' is not a MAJOR.MINOR version"),
])
def test_a_plugin_needing_a_newer_core_is_warned_about(needs, core, says):
    pm = make_plugin_manager()
    pm.register(Requires(needs), name="probe")
    warnings = [w for w in compatibility_warnings(pm, core) if w.startswith("plugin probe")]
    assert (warnings == []) if says is None else (len(warnings) == 1 and warnings[0].startswith(says)), warnings


def test_portal_plugins_warns_when_an_installed_plugin_needs_a_newer_core(tmp_path):
    # A third-party distribution on the path, registered under the `portal` group like any plugin.
    (tmp_path / "future_plugin.py").write_text('PORTAL_REQUIRES_HOOKS = "1.99"\n')
    info = tmp_path / "future_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: future-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[portal]\nfuture = future_plugin\n")
    env = {"PATH": "/usr/bin:/bin", "DEV_MODE": "true", "PYTHONPATH": str(tmp_path)}
    text = subprocess.run([PORTAL, "plugins"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0, text.stderr
    assert f"Plugins (this portal provides hooks {HOOKS_VERSION}):" in text.stdout
    assert "      requires hooks: 1.99" in text.stdout
    assert (f"  warning: plugin future needs hooks 1.99, but this portal provides hooks {HOOKS_VERSION}: upgrade "
            "the portal, or use a release of the plugin made for it") in text.stdout
    listing = json.loads(subprocess.run([PORTAL, "plugins", "--json"], env=env, cwd=tmp_path, capture_output=True,
                                        text=True, timeout=60).stdout)
    assert listing["hooks_version"] == HOOKS_VERSION and len(listing["warnings"]) == 1
    assert {"name": "future", "requires_hooks": "1.99"}.items() <= next(
        p for p in listing["plugins"] if p["name"] == "future").items()
