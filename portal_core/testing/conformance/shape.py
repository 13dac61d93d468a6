"""assert_implements: an implementation has the shape a service Protocol promises, not only its names.

``isinstance(obj, SomeProtocol)`` on a ``runtime_checkable`` Protocol checks that the member names exist,
nothing more: a ``put`` that is not ``async``, that takes ``max_bytes`` positionally or names it
``limit``, or a ``name`` that is a number all pass it, and the portal then fails at the first call. This
checks every member the Protocol declares:

- a method is there and callable; an ``async def`` in the Protocol is a coroutine function in the
  implementation, and a plain ``def`` is not;
- every parameter the portal passes can be passed the way it passes it: positional parameters in the same
  order (by name too, when they may be given by keyword), keyword-only ones by name (or through
  ``**kwargs``); any extra parameter of the implementation has a default;
- an attribute is there, and an instance of its annotated type when that is a plain class or a
  ``tuple[X, ...]``.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def protocol_members(protocol: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """({method name: function}, {attribute name: annotation}) a Protocol declares (its bases' too)."""
    methods: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for base in reversed(protocol.__mro__):
        if base in (object, typing.Protocol, typing.Generic) or not getattr(base, "_is_protocol", False):
            continue
        hints = typing.get_type_hints(base)
        for name in base.__dict__.get("__annotations__", {}):
            attributes[name] = hints.get(name, Any)
        for name, value in base.__dict__.items():
            if inspect.isfunction(value) and not name.startswith("_"):
                methods[name] = value
    return methods, attributes


def signature_problems(name: str, declared, implemented) -> list[str]:
    """Why ``implemented`` cannot be called the way the Protocol's ``declared`` method is (bound methods)."""
    problems = []
    if inspect.iscoroutinefunction(declared) != inspect.iscoroutinefunction(implemented):
        kind = "an async def" if inspect.iscoroutinefunction(declared) else "a plain def (not async)"
        problems.append(f"{name} must be {kind}")
    want = [p for p in inspect.signature(declared).parameters.values()][1:]  # without self
    try:
        have = list(inspect.signature(implemented).parameters.values())
    except (TypeError, ValueError):
        return [*problems, f"{name}: its signature cannot be read"]
    takes_var_args = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in have)
    takes_var_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in have)
    positional_have = [p for p in have if p.kind in _POSITIONAL]
    by_name = {p.name: p for p in have}
    used: set[str] = set()
    positional_want = [p for p in want if p.kind in _POSITIONAL]
    for index, param in enumerate(positional_want):
        if index < len(positional_have):
            other = positional_have[index]
            if param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and other.name != param.name:
                problems.append(f"{name}: positional parameter {index + 1} is {other.name!r}, the interface "
                                f"calls it {param.name!r}")
            used.add(other.name)
        elif not takes_var_args:
            problems.append(f"{name} does not take {param.name!r} (positional parameter {index + 1})")
    for param in (p for p in want if p.kind is inspect.Parameter.KEYWORD_ONLY):
        other = by_name.get(param.name)
        if other is None:
            if not takes_var_kwargs:
                problems.append(f"{name} does not take the keyword argument {param.name!r}")
        elif other.kind is inspect.Parameter.POSITIONAL_ONLY:
            problems.append(f"{name}: {param.name!r} is positional-only; the portal passes it by keyword")
        else:
            used.add(other.name)
            if param.default is not inspect.Parameter.empty and other.default is inspect.Parameter.empty:
                problems.append(f"{name}: {param.name!r} needs a default (the portal may leave it out)")
    for param in have:
        if param.name in used or param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if param.default is inspect.Parameter.empty:
            problems.append(f"{name} requires {param.name!r}, which the portal never passes")
    return problems


def _type_problem(name: str, annotation: Any, value: Any) -> str | None:
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and origin is None:
        ok = isinstance(value, annotation)
    elif origin is tuple:
        args = typing.get_args(annotation)
        ok = isinstance(value, tuple)
        if ok and len(args) == 2 and args[1] is Ellipsis and isinstance(args[0], type):
            ok = all(isinstance(item, args[0]) for item in value)
    elif origin in (typing.Union, types.UnionType):
        ok = any(_type_problem(name, arg, value) is None for arg in typing.get_args(annotation))
    else:
        return None  # not something a plain isinstance can tell
    return None if ok else f"{name} is {value!r}, not a {annotation}"


def implementation_problems(obj: Any, protocol: type) -> list[str]:
    """Everything in which ``obj`` differs from what ``protocol`` declares (empty when it conforms)."""
    methods, attributes = protocol_members(protocol)
    problems = []
    for name, declared in methods.items():
        implemented = getattr(obj, name, None)
        if implemented is None:
            problems.append(f"{name} is missing")
        elif not callable(implemented):
            problems.append(f"{name} is not callable")
        else:
            problems.extend(signature_problems(name, declared, implemented))
    for name, annotation in attributes.items():
        if not hasattr(obj, name):
            problems.append(f"the attribute {name} is missing")
        elif (problem := _type_problem(name, annotation, getattr(obj, name))) is not None:
            problems.append(problem)
    return problems


def assert_implements(obj: Any, protocol: type) -> None:
    """Fail, naming every difference, unless ``obj`` has the shape ``protocol`` declares (see the module doc)."""
    problems = implementation_problems(obj, protocol)
    assert not problems, f"{type(obj).__name__} does not implement {protocol.__name__}: " + "; ".join(problems)
