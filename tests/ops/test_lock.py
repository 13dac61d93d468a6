"""The hash-locked install files agree with pyproject.toml, offline (scripts/lock writes them; the image uses them).

- every runtime requirement of pyproject.toml has a pinned entry in requirements.lock, with hashes, whose
  version satisfies the requirement's specifier; likewise [build-system] requires in requirements-build.lock;
- each lock holds nothing the project does not need: every entry is required by pyproject.toml or, through
  the lock's "# via" lines, by another entry that is;
- the Dockerfile installs dependencies only from the locks, with --require-hashes.
The image test (tests/ops/test_image.py) proves the locks really install: the image is built from them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
ROOT_MARK = "portal (pyproject.toml)"
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@attrs.define
class Entry:
    name: str
    version: str
    hashes: list[str] = attrs.field(factory=list)
    via: list[str] = attrs.field(factory=list)


def parse_lock(text: str) -> dict[str, Entry]:
    """{canonical name: Entry} from a `uv pip compile --generate-hashes` file."""
    entries: dict[str, Entry] = {}
    current: Entry | None = None
    in_via = False
    for line in text.splitlines():
        match = ENTRY.match(line)
        if match:
            current = Entry(canonicalize_name(match.group(1)), match.group(2))
            entries[current.name] = current
            in_via = False
            continue
        stripped = line.strip()
        if current is None or not stripped:
            continue
        current.hashes += HASH.findall(stripped)
        if stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                current.via.append(rest)
        elif in_via and stripped.startswith("#   "):
            current.via.append(stripped.removeprefix("#").strip())
    return entries


def problems(requirements: list[str], lock: dict[str, Entry], *, root: str | None) -> list[str]:
    """Every way ``lock`` disagrees with ``requirements`` (empty when they agree).

    ``root`` is the "# via" name that stands for the project itself; None for a lock whose direct entries
    carry no "# via" (the build lock).
    """
    found = []
    direct = set()
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        direct.add(name)
        entry = lock.get(name)
        if entry is None:
            found.append(f"{requirement} is not in the lock")
            continue
        if not requirement.specifier.contains(Version(entry.version), prereleases=True):
            found.append(f"the lock pins {name}=={entry.version}, which {requirement} does not allow")
        if root is not None and root not in entry.via:
            found.append(f"{name} is not marked as required by pyproject.toml in the lock")
    for entry in lock.values():
        if not entry.hashes:
            found.append(f"{entry.name}=={entry.version} has no hash")
    # Everything in the lock must be reachable from a direct requirement through "# via" edges.
    needed = set(direct)
    changed = True
    while changed:
        changed = False
        for entry in lock.values():
            if entry.name not in needed and any(canonicalize_name(v) in needed for v in entry.via if v != root):
                needed.add(entry.name)
                changed = True
    found += [f"{name}=={lock[name].version} is in the lock but nothing in pyproject.toml needs it"
              for name in sorted(set(lock) - needed)]
    return found


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def runtime_lock() -> dict[str, Entry]:
    return parse_lock((REPO / "requirements.lock").read_text(encoding="utf-8"))


def build_lock() -> dict[str, Entry]:
    return parse_lock((REPO / "requirements-build.lock").read_text(encoding="utf-8"))


def test_the_runtime_lock_matches_pyproject() -> None:
    lock = runtime_lock()
    assert len(lock) > 20, "the lock parser found too few entries to be right"
    assert problems(pyproject()["project"]["dependencies"], lock, root=ROOT_MARK) == []
    assert all(len(entry.hashes) >= 1 for entry in lock.values())


def test_the_build_lock_matches_the_build_system() -> None:
    assert problems(pyproject()["build-system"]["requires"], build_lock(), root=None) == []


def test_the_check_notices_each_kind_of_drift() -> None:
    dependencies = list(pyproject()["project"]["dependencies"])
    lock = runtime_lock()
    # A dependency added to pyproject.toml without re-locking:
    assert problems(dependencies + ["rich>=13"], lock, root=ROOT_MARK) == ["rich>=13 is not in the lock"]
    # A specifier raised past the pinned version:
    pluggy = lock["pluggy"].version
    raised = [d if not d.startswith("pluggy") else f"pluggy>{pluggy}" for d in dependencies]
    assert problems(raised, lock, root=ROOT_MARK) == [
        f"the lock pins pluggy=={pluggy}, which pluggy>{pluggy} does not allow"]
    # A dependency removed from pyproject.toml but still locked (with what only it pulled in):
    without = [d for d in dependencies if not d.startswith("stripe")]
    leftovers = problems(without, lock, root=ROOT_MARK)
    assert f"stripe=={lock['stripe'].version} is in the lock but nothing in pyproject.toml needs it" in leftovers
    # A locked entry without its hashes:
    unhashed = {**lock, "pluggy": attrs.evolve(lock["pluggy"], hashes=[])}
    assert problems(dependencies, unhashed, root=ROOT_MARK) == [f"pluggy=={pluggy} has no hash"]


def test_the_dockerfile_installs_dependencies_only_from_the_locks() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    installs = [" ".join(cmd.split()) for cmd in re.findall(r"pip install ([^&\n\\]*(?:\\\n[^&\n\\]*)*)", text)]
    assert installs, "no pip install in the Dockerfile"
    for command in installs:
        from_lock = "--require-hashes" in command and re.search(r"-r requirements(-build)?\.lock", command)
        own_wheel = "--no-deps /tmp/dist/portal-" in command
        assert from_lock or own_wheel, f"the Dockerfile installs something outside the locks: pip install {command}"
    assert "-r requirements.lock" in text and "-r requirements-build.lock" in text
