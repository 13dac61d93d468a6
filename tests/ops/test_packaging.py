"""Packaging: the built-in plugins install as ``portal_plugins`` (no top-level ``plugins`` package in
site-packages for another distribution to overwrite), and setuptools builds the wheel without warnings."""

from __future__ import annotations

import zipfile


def test_the_wheel_has_no_top_level_plugins_package_and_its_entry_points_name_portal_plugins(portal_wheel):
    names = zipfile.ZipFile(portal_wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert "plugins" not in tops, sorted(tops)
    assert {"portal_core", "portal_plugins"} <= tops
    for plugin in ("dev_stubs", "oidc", "r2", "stripe", "webhooks"):
        assert f"portal_plugins/{plugin}/__init__.py" in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(portal_wheel).read(entry_points).decode()
    assert "= portal_plugins." in text and "= plugins." not in text, text


def test_the_build_has_no_package_would_be_ignored_warnings(portal_wheel):
    log = portal_wheel.with_suffix(".log").read_text()
    assert "running build_py" in log, log[-2000:]  # setuptools' own output is here, warnings included
    assert "would be ignored" not in log and "Package would be ignored" not in log, log[-4000:]
