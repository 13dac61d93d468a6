"""Settings: declared once as frozen attrs classes, read from the environment, validated all at once.

Every setting is an attrs field made with :func:`setting`, which names its environment variable and
says how to explain it. The core declares :class:`CoreSettings`; each plugin contributes its own
section (see the ``portal_config_sections`` hook and :class:`portal_core.backends.Backend`). One
cattrs converter turns the raw strings into typed values. :func:`read_section` never stops at the
first problem: it returns every missing or malformed variable, each with a hint, so an operator fixes
the whole configuration in one go.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NewType

import attrs
import cattrs

from .redact import mask, secret_parts

EX_CONFIG = 78  # sysexits.h: configuration error

ByteSize = NewType("ByteSize", int)
"""An integer number of bytes; the environment may say "100MiB", "5 GiB", "1048576"."""

_NOTHING = attrs.NOTHING


def setting(
    env: str,
    *,
    default: Any = _NOTHING,
    dev_default: Any = _NOTHING,
    hint: str = "",
    secret: bool = False,
    check: typing.Callable[[Any], str | None] | None = None,
    prefix: bool = False,
) -> Any:
    """Declare one setting of a settings class.

    ``env`` is the environment variable (or, with ``prefix=True``, a prefix: the field becomes a
    dict of every variable starting with it, keyed by the rest of the name in lower case).
    ``default`` applies everywhere; ``dev_default`` only when DEV_MODE is on, so a setting can be
    required in production and free on a laptop. A setting with neither is required. ``check``
    returns a sentence when a converted value is unacceptable. ``secret`` values are never printed.
    """
    meta = {"env": env, "dev_default": dev_default, "default": default, "hint": hint,
            "secret": secret, "check": check, "prefix": prefix}
    if prefix:
        return attrs.field(kw_only=True, factory=dict, metadata={"portal": meta})
    if default is not _NOTHING:
        return attrs.field(kw_only=True, default=default, metadata={"portal": meta})
    return attrs.field(kw_only=True, default=None if dev_default is not _NOTHING else _NOTHING,
                       metadata={"portal": meta})


def between(low: float, high: float, unit: str = ""):
    """A ``check`` for numeric settings: ``between(1, 120, " seconds")``."""
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low}{unit} and {high}{unit}"
    return check


@attrs.frozen
class ConfigSection:
    """A named group of settings a plugin requires; ``settings`` is an attrs class of :func:`setting` fields."""

    name: str
    settings: type
    description: str = ""


@attrs.frozen
class ConfigProblem:
    """One missing or malformed variable and what to do about it."""

    variable: str
    problem: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.variable}: {self.problem}"
        return f"{text} — {self.hint}" if self.hint else text


MISSING = "is missing"
DEV_MODE_SUGGESTION = "To try the portal on this machine without any outside service, set DEV_MODE=true."


class ConfigError(Exception):
    """The configuration cannot be used. Lists every problem at once; exit status 78 (EX_CONFIG).

    ``dev_mode`` says whether DEV_MODE was on: when it was not, the report suggests it for local use.
    """

    def __init__(self, problems: list[ConfigProblem], *, dev_mode: bool = True) -> None:
        self.problems = problems
        self.dev_mode = dev_mode
        super().__init__(self.report("the portal cannot start"))

    def report(self, lead: str) -> str:
        """Every problem under ``lead`` ("the portal cannot start", "the portal would refuse to start"),
        the empty-value note once (not on every line), and the DEV_MODE suggestion in production."""
        lines = [f"  - {p}" for p in self.problems]
        noun = "problem" if len(self.problems) == 1 else "problems"
        text = f"{lead}: {len(self.problems)} configuration {noun}:\n" + "\n".join(lines)
        if any(p.problem == MISSING for p in self.problems):
            text += "\n(An empty value counts as missing.)"
        if not self.dev_mode:
            text += "\n" + DEV_MODE_SUGGESTION
        return text


# ---------------------------------------------------------------------------------------------------
# The converter: raw environment strings -> typed values.

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "t": 1000**4, "tb": 1000**4, "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2,
          "gi": 1024**3, "gib": 1024**3, "ti": 1024**4, "tib": 1024**4}


def parse_size(raw: str) -> int:
    match = _SIZE.match(str(raw))
    if not match:
        raise ValueError(f"expected a size such as 100MiB, 5GiB or a number of bytes, got {raw!r}")
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


def _to_bool(raw: Any, _type: Any) -> bool:
    return parse_bool(raw)


def parse_bool(raw: Any) -> bool:
    """true/false, 1/0, yes/no, on/off (any case); ValueError otherwise."""
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _to_int(raw: Any, _type: Any) -> int:
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None


def _to_float(raw: Any, _type: Any) -> float:
    try:
        return float(str(raw).strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None


def _to_tuple(raw: Any, _type: Any) -> tuple[str, ...]:
    if isinstance(raw, (tuple, list)):
        return tuple(raw)
    return tuple(part.strip() for part in str(raw).split(",") if part.strip())


def make_converter() -> cattrs.Converter:
    """The one converter every section is read with."""
    converter = cattrs.Converter()
    converter.register_structure_hook(bool, _to_bool)
    converter.register_structure_hook(int, _to_int)
    converter.register_structure_hook(float, _to_float)
    converter.register_structure_hook(ByteSize, lambda raw, _t: ByteSize(parse_size(raw)))
    converter.register_structure_hook(Path, lambda raw, _t: Path(str(raw)).expanduser())
    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _to_tuple)
    converter.register_structure_hook(str, lambda raw, _t: str(raw).strip())
    return converter


CONVERTER = make_converter()


def _field_type(cls: type, field: attrs.Attribute) -> Any:
    hints = typing.get_type_hints(cls)
    hint = hints[field.name]
    # "X | None" fields are read as X; None only ever comes from a default.
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType")) and len(args) == 1:
        return args[0]
    return hint


def fields_of(cls: type) -> list[tuple[attrs.Attribute, dict]]:
    """The (attribute, setting metadata) pairs of a settings class."""
    return [(f, f.metadata["portal"]) for f in attrs.fields(cls) if "portal" in f.metadata]


def read_section(cls: type, env: Mapping[str, str], *, dev_mode: bool) -> tuple[Any, list[ConfigProblem]]:
    """Build ``cls`` from ``env``; return (instance or None, every problem found). Empty means missing."""
    values: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for field, meta in fields_of(cls):
        name = meta["env"]
        if meta["prefix"]:
            found = {k[len(name):].lower(): v.strip() for k, v in env.items()
                     if k.startswith(name) and len(k) > len(name) and v.strip()}
            complaint = meta["check"](found) if meta["check"] else None
            if complaint:
                problems.append(ConfigProblem(f"{name}*", complaint, meta["hint"]))
            values[field.name] = found
            continue
        raw = env.get(name, "")
        if not str(raw).strip():
            if dev_mode and meta["dev_default"] is not _NOTHING:
                values[field.name] = meta["dev_default"]
            elif meta["default"] is not _NOTHING:
                values[field.name] = meta["default"]
            else:
                problems.append(ConfigProblem(name, MISSING, meta["hint"]))
            continue
        try:
            value = CONVERTER.structure(raw, _field_type(cls, field))
        except (ValueError, TypeError, cattrs.BaseValidationError) as exc:
            message = "is malformed" if meta["secret"] else f"is malformed: {mask(str(exc), secret_parts(str(raw)))}"
            problems.append(ConfigProblem(name, message, meta["hint"]))
            continue
        complaint = meta["check"](value) if meta["check"] else None
        if complaint:
            shown = mask(repr(raw), secret_parts(str(raw)))
            problems.append(ConfigProblem(name, complaint if meta["secret"] else f"{complaint} (got {shown})", meta["hint"]))
            continue
        values[field.name] = value
    if problems:
        return None, problems
    return cls(**values), []


def secret_values(instance: Any) -> list[str]:
    """The values of a section's ``secret=True`` settings, for :func:`portal_core.redact.mask` to keep out of
    every log line. (A URL's password and secret parameters are masked wherever a URL appears; a malformed
    URL's are masked by those that report it, with :func:`portal_core.redact.secret_parts`.)"""
    found: list[str] = []
    for field, meta in fields_of(type(instance)):
        value = getattr(instance, field.name)
        if meta["secret"] and value is not None:
            found += [str(item) for item in value.values()] if meta["prefix"] else [str(value)]
    return found


def describe(instance: Any) -> list[tuple[str, str]]:
    """(variable, printable value) for every setting of a section: secret settings as ********, and the
    secret parts of the others (a URL's password, ``?password=``) masked."""
    rows = []
    for field, meta in fields_of(type(instance)):
        value = getattr(instance, field.name)
        if meta["prefix"]:
            for key, item in sorted(value.items()):
                shown = "********" if meta["secret"] else mask(str(item), secret_parts(str(item)))
                rows.append((meta["env"] + key.upper(), shown))
            continue
        if value is None:
            shown = "(not set)"
        elif meta["secret"]:
            shown = "********"
        else:
            text = ",".join(value) if isinstance(value, tuple) else str(value)
            shown = mask(text, secret_parts(text))
        rows.append((meta["env"], shown))
    return rows


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, blank lines, `export ` and quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def environment(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> dict[str, str]:
    """The settings source: the .env file in the working directory, overridden by the real environment."""
    merged = read_dotenv((cwd or Path.cwd()) / ".env")
    merged.update(os.environ if environ is None else environ)
    return merged
