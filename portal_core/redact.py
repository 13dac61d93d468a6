"""Secrets out of every message: :func:`mask` is the one function anything printed, logged or returned goes through.

What counts as secret: the password of a URL's userinfo (``postgresql://user:PASSWORD@host/db``), the
value of a query or keyword parameter whose name says password, secret, token, key, signature or
credential (``?password=``, ``?sslpassword=``, ``password=... `` in a libpq keyword DSN), and whatever
exact strings the caller names (settings declared ``secret=True``, and the parts :func:`secret_parts`
finds in a URL setting). It works on text, not on a parsed URL, because the URLs that need it most are
the malformed ones: a port that is not a number, a password with an unescaped '@' or '/', a bad
percent escape (libpq's complaint about one quotes the password alone, which only the named strings
catch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"
# Secret settings shorter than this are not masked in every log line (see :func:`loggable_secrets`).
LOG_SECRET_MIN = 8
# A name that says its value is a secret: password, passwd, pwd, sslpassword, client_secret, token,
# api_key, AccessKeyId, X-Amz-Signature, credential...
_SECRET_NAME = r"[\w.\-]*?(?:pass(?:word|wd)?|pwd|secret|token|key|signature|credential)[\w.\-]*"
_PARAM = re.compile(rf"(?i)(?<![\w.\-])({_SECRET_NAME})(\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^&;\s#'\"]*)")
# scheme://user:password@ — the password runs to the last '@' before whitespace or a quote, so an
# unescaped '@', '/', ':' or '#' in it is still covered (a little more than the password may go with it).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/?#@'\"]*):([^\s'\"]*)@")


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret part replaced by ``***``: the ``secrets`` named, URL passwords and
    secret-named parameters. Safe on any text: a message, a traceback, a whole URL or a malformed one."""
    text = str(text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    return _PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def secret_parts(value: str) -> list[str]:
    """The secret substrings of a URL or DSN setting (as written and percent-decoded), for :func:`mask`'s
    ``secrets``: its userinfo password and its secret-named parameters' values. Malformed input is fine."""
    found: list[str] = []
    for match in _USERINFO.finditer(value):
        found.append(match.group(2))
    for match in _PARAM.finditer(value):
        found.append(match.group(3).strip("'\""))
    return [part for raw in found for part in {raw, unquote(raw)} if part]


def loggable_secrets(values: Iterable[str]) -> tuple[str, ...]:
    """The secret values worth masking in every log line: real keys and tokens are long, and masking a short
    test value ("ops") everywhere would garble every line that happens to contain it."""
    return tuple(value for value in values if value and len(value) >= LOG_SECRET_MIN)
