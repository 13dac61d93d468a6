"""axe-core on a live page: every serious or critical accessibility violation, in words.

axe.min.js comes from the axe-playwright-python package (the [test] extra). It is evaluated through the
DevTools protocol, which the pages' CSP (script-src 'self') does not govern, so nothing about the portal
is loosened for the check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BLOCKING = ("serious", "critical")


def axe_source() -> str:
    try:
        import axe_playwright_python
    except ImportError:
        pytest.fail("axe-playwright-python is missing: install the [test] extra (pip install -e '.[test]')",
                    pytrace=False)
    return Path(axe_playwright_python.__file__).with_name("axe.min.js").read_text(encoding="utf-8")


_AXE: list[str] = []


async def violations(page) -> list[str]:
    """axe's serious and critical violations on the page as it is now (dialogs, errors and all)."""
    if not _AXE:
        _AXE.append(axe_source())
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(_AXE[0])
    results = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in results["violations"]:
        if violation["impact"] in BLOCKING:
            targets = "; ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} — at {targets}")
    return found


async def assert_accessible(page, state: str) -> None:
    """Fail naming the state and every serious or critical violation axe finds in it."""
    found = await violations(page)
    assert not found, f"axe found accessibility violations on {page.url} ({state}):\n" + "\n".join(found)
