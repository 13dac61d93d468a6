"""`portal new-plugin NAME [--dir D]`: write a ready plugin package a plugin author starts from.

The package has a pyproject.toml registering it under the ``portal`` entry-point group, a hookimpl
module (settings, an API route, SQL, an event handler), a settings class, a README, and tests built on
the portal's test kit (portal_core.testing). ``pip install -e D && pytest D`` passes as generated
(tests/testing/test_scaffold.py proves it in a fresh virtualenv with only ``portal[testing]``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path

from .hookspecs import HOOKS_VERSION

EX_CANTCREAT = 73  # sysexits.h: cannot create the output
NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
MAX_NAME = 40

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "portal-__NAME__"
version = "0.1.0"
description = "__NAME__: a plugin for the portal"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["portal"]

[project.optional-dependencies]
test = ["portal[testing]"]

# The portal finds plugins through this entry-point group only: <plugin name> = "<module>".
[project.entry-points.portal]
__NAME__ = "__PACKAGE__"

[tool.setuptools]
packages = ["__PACKAGE__"]

[tool.setuptools.package-data]
__PACKAGE__ = ["*.sql"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
'''

INIT = '''\
"""__NAME__: a plugin for the portal. Hookimpls only; the work is done in the modules beside this one.

It greets signed-in customers at GET /api/__NAME__/hello with __PREFIX___GREETING and the number of files
they uploaded, which it counts from the portal's events.
"""

from __future__ import annotations

from importlib import resources

from portal_core import hookimpl
from portal_core.config import ConfigSection

# The hooks version this plugin was written for (docs/plugins.md, "Compatibility"): `portal plugins` warns
# when the running portal is older.
PORTAL_REQUIRES_HOOKS = "__HOOKS__"


@hookimpl
def portal_config_sections():
    from .settings import __CLASS__Settings

    return [ConfigSection("__NAME__", __CLASS__Settings, "the __NAME__ plugin")]


@hookimpl
def portal_schema_sql(config):
    return resources.files(__name__).joinpath("schema.sql").read_text(encoding="utf-8")


@hookimpl
def portal_routes(config):
    from .views import routes

    return routes()


@hookimpl
async def portal_event(event, app):
    from .views import count_upload

    if event.type == "artifact.created":
        await count_upload(app, event)
'''

SETTINGS = '''\
"""The plugin's settings, read from the environment and validated with the portal's own."""

from __future__ import annotations

import attrs

from portal_core.config import setting


@attrs.frozen
class __CLASS__Settings:
    greeting: str = setting("__PREFIX___GREETING", default="Hello", hint="how the __NAME__ plugin greets customers")
'''

SCHEMA = '''\
-- The __NAME__ plugin's table. Applied at every start: IF NOT EXISTS only, never DROP or RENAME.
CREATE TABLE IF NOT EXISTS __TABLE___uploads (
    event_id  bigint PRIMARY KEY,
    user_id   bigint NOT NULL
);
'''

VIEWS = '''\
"""GET /api/__NAME__/hello, and the event handler that counts uploads."""

from __future__ import annotations

from aiohttp import web

from portal_core import keys
from portal_core.openapi import operation
from portal_core.web.sessions import authenticate


@operation("A greeting for the signed-in customer, with how many files they uploaded", tags=["__NAME__"],
           response={"type": "object", "properties": {"greeting": {"type": "string"}, "uploads": {"type": "integer"}}})
async def hello(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    greeting = request.app[keys.CONFIG].sections["__NAME__"].greeting
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT count(*) FROM __TABLE___uploads WHERE user_id = %s", (principal.user.id,))
        (uploads,) = await cur.fetchone()
    return web.json_response({"greeting": f"{greeting}, {principal.user.email}", "uploads": uploads})


async def count_upload(app: web.Application, event) -> None:
    # Events arrive at least once: keyed on the event id, a second delivery changes nothing.
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("INSERT INTO __TABLE___uploads (event_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                          (event.id, event.owner_id))


def routes() -> list[web.AbstractRouteDef]:
    return [web.get("/api/__NAME__/hello", hello)]
'''

TESTS = '''\
"""The plugin in a real portal (in-process, DEV_MODE, a fresh PostgreSQL database per test): the test kit's
fixtures come from portal_core.testing, installed with portal[testing]."""

from __future__ import annotations

import asyncio

import pytest

from portal_core.testing import signed_in


async def test_a_signed_in_customer_is_greeted(portal_client):
    ada = await signed_in(portal_client, "ada@example.com")
    response = await ada.get("/api/__NAME__/hello")
    assert response.status == 200
    assert await response.json() == {"greeting": "Hello, ada@example.com", "uploads": 0}


@pytest.mark.portal(env={"__PREFIX___GREETING": "Welcome back"})
async def test_the_greeting_is_a_setting(portal_client):
    ada = await signed_in(portal_client, "ada@example.com")
    assert (await (await ada.get("/api/__NAME__/hello")).json())["greeting"] == "Welcome back, ada@example.com"


async def test_signed_out_visitors_are_refused(portal_client):
    response = await portal_client.get("/api/__NAME__/hello")
    assert response.status == 401


async def test_uploads_are_counted_from_the_portals_events(portal_client, captured_events):
    ada = await signed_in(portal_client, "ada@example.com")
    assert (await ada.upload(b"hello", "hello.txt")).status == 201
    await captured_events.wait_for("artifact.created")  # delivered to every plugin, this one too
    for _ in range(100):  # and counted by this plugin's handler, in its own time
        counted = (await (await ada.get("/api/__NAME__/hello")).json())["uploads"]
        if counted:
            break
        await asyncio.sleep(0.05)
    assert counted == 1
'''

README = '''\
# portal-__NAME__

A plugin for the portal. It greets signed-in customers at `GET /api/__NAME__/hello` and counts the files
they upload (from the portal's `artifact.created` events).

## Install

```sh
pip install -e .          # registers the `__NAME__` plugin under the portal's `portal` entry-point group
portal plugins            # lists it with its hooks
```

## Settings

| variable | default | meaning |
|---|---|---|
| `__PREFIX___GREETING` | `Hello` | how the plugin greets customers |

## Test

```sh
pip install -e '.[test]'  # the portal's test kit: portal[testing]
pytest
```

The tests run a real portal in-process on a fresh PostgreSQL database each: set `PORTAL_TEST_DATABASE_URL`
to a server you may create databases on, or leave it unset to have a throwaway one started from the
machine's PostgreSQL binaries. See the portal's docs/plugins.md ("Testing a plugin").
'''


def files_for(name: str) -> dict[str, str]:
    """The generated files, path -> text, for a plugin named ``name``."""
    package = "portal_" + name.replace("-", "_")
    values = {"__NAME__": name, "__PACKAGE__": package, "__PREFIX__": name.replace("-", "_").upper(),
              "__CLASS__": "".join(part.capitalize() for part in re.split(r"[-_]", name)),
              "__TABLE__": name.replace("-", "_"), "__HOOKS__": HOOKS_VERSION}

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace(key, value)
        return text

    return {"pyproject.toml": fill(PYPROJECT), "README.md": fill(README), f"{package}/__init__.py": fill(INIT),
            f"{package}/settings.py": fill(SETTINGS), f"{package}/schema.sql": fill(SCHEMA),
            f"{package}/views.py": fill(VIEWS), f"tests/test_{values['__TABLE__']}.py": fill(TESTS)}


def name_taken(name: str) -> str | None:
    """Why ``name`` would clash with what is installed, or None. A plugin whose entry-point name another
    plugin has is never loaded (pluggy keeps the first), and a package named like an installed one
    (``core`` → portal_core, ``plugins`` → portal_plugins) would shadow it."""
    normal = name.replace("-", "_")
    for entry in entry_points(group="portal"):
        if entry.name.replace("-", "_") == normal:
            return f"the installed plugin {entry.name!r} ({entry.value}) already has that name"
    package = "portal_" + normal
    if importlib.util.find_spec(package) is not None:
        return f"its package would be named {package}, like one already installed"
    return None


def cmd_new_plugin(args) -> int:
    name = args.name
    if not NAME.match(name) or len(name) > MAX_NAME:
        print(f"portal: new-plugin: {name!r} is not a plugin name: use lower-case letters and digits, words "
              f"joined by - or _, starting with a letter, at most {MAX_NAME} characters (e.g. virus-scan)",
              file=sys.stderr)
        return 2
    if (clash := name_taken(name)) is not None:
        print(f"portal: new-plugin: {name!r} is taken: {clash}; choose another name (nothing was written)",
              file=sys.stderr)
        return 2
    target = Path(args.dir) if args.dir else Path(f"portal-{name}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        print(f"portal: new-plugin: {target} already exists and is not an empty directory; nothing was written",
              file=sys.stderr)
        return EX_CANTCREAT
    files = files_for(name)
    made: list[Path] = []  # what this run created, removed again if it cannot finish
    try:
        for relative, text in files.items():
            path = target / relative
            for folder in reversed([path.parent, *path.parent.parents]):
                if not folder.exists():
                    folder.mkdir()
                    made.append(folder)
            path.write_text(text, encoding="utf-8")
            made.append(path)
    except OSError as exc:
        for path in reversed(made):
            path.rmdir() if path.is_dir() else path.unlink(missing_ok=True)
        print(f"portal: new-plugin: cannot write {target}: {exc}; nothing was left behind", file=sys.stderr)
        return EX_CANTCREAT
    shown = target if target.is_absolute() else f"./{target}"  # pip reads a bare name as a package to download
    print(f"wrote the plugin {name!r} to {target}/ ({len(files)} files). Next:\n"
          f"  pip install -e '{shown}[test]'\n  pytest {shown}\n"
          "docs/plugins.md explains every hook and the test kit.")
    return 0
