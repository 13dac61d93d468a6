"""The public plugin API (docs/plugins.md, "The public plugin API") is what plugins really use: every name
listed exists, and every plugin here — the built-in ones (the webhooks plugin among them), the examples, and
what `portal new-plugin` writes — imports nothing else from portal_core."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from portal_core.scaffold import files_for

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"
EVERY = "*"


def public_api() -> dict[str, set[str]]:
    """{module: names} from the docs' table; {EVERY} for a module whose every public name is public."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## The public plugin API", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        match = re.match(r"^\| `(portal_core[\w.]*)` \| (.*) \|$", line)
        if match:
            table[match.group(1)] = set(re.findall(r"`([\w*]+)`", match.group(2)))
    assert len(table) >= 10, f"the table in {DOCS} was not found or is too short: {table}"
    return table


def test_every_listed_name_exists():
    for module_name, names in public_api().items():
        module = importlib.import_module(module_name)
        for name in names - {EVERY}:
            assert hasattr(module, name), f"docs/plugins.md lists {module_name}.{name}, which does not exist"


def imports_of(source: str, filename: str) -> list[tuple[str, str]]:
    """(module, name) for every name a file takes from portal_core, attributes of imported modules included."""
    tree = ast.parse(source, filename)
    found: list[tuple[str, str]] = []
    modules: dict[str, str] = {}  # local name -> a portal_core module imported as a whole
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                node.module.split(".")[0] == "portal_core":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if importlib.util.find_spec(submodule.split(".")[0]) and _is_module(submodule):
                    modules[alias.asname or alias.name] = submodule
                else:
                    found.append((node.module, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "portal_core":
                    found.append((alias.name, EVERY))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            found.append((modules[node.value.id], node.attr))
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def plugin_sources() -> dict[str, list[tuple[str, str]]]:
    """{plugin: [(file name, source)]} for every plugin this repository holds or generates."""
    sources = {folder.name: [(str(p.relative_to(ROOT)), p.read_text()) for p in folder.rglob("*.py")]
               for folder in (ROOT / "plugins").iterdir() if (folder / "__init__.py").is_file()}
    sources["filetypes example"] = [(str(p.relative_to(ROOT)), p.read_text())
                                    for p in (ROOT / "examples" / "portal-filetypes").rglob("*.py")]
    sources["diskstore example"] = [(str(p.relative_to(ROOT)), p.read_text())
                                    for p in (ROOT / "tests" / "plugins" / "diskstore_example").rglob("*.py")]
    sources["new-plugin"] = [(f"portal new-plugin: {path}", text) for path, text in files_for("demo").items()
                             if path.endswith(".py")]
    return sources


@pytest.mark.parametrize("plugin", sorted(plugin_sources()))
def test_a_plugin_imports_only_the_public_api(plugin):
    api = public_api()
    files = plugin_sources()[plugin]
    assert files, f"no Python files found for {plugin}"
    private = []
    for filename, source in files:
        for module, name in imports_of(source, filename):
            allowed = api.get(module)
            if allowed is None or not (EVERY in allowed or name in allowed):
                private.append(f"{filename}: {module}.{name}")
    assert not private, f"{plugin} uses names outside the public plugin API (docs/plugins.md): {private}"


def test_the_webhooks_plugin_is_checked():
    assert "webhooks" in plugin_sources()  # the requirement: built only on the public API
