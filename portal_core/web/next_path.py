"""The one rule for where the portal sends a browser back to (``?next=`` and any other return address).

Only a path on this site passes. Browsers are lenient in ways a plain check misses: they delete tabs,
CRs and LFs anywhere in a URL ("/\\t/evil.example" is followed as "//evil.example"), treat a backslash as
a slash ("/\\evil.example" is another host), and strip leading spaces and control characters. So the
value is judged as the browser would read it, and also once percent-decoded (a proxy or a later
redirect may decode "/%2F/evil.example" into "//evil.example"); whatever is not plainly a local path
becomes "/". Every place that takes a return address uses :func:`safe_next`, and pages render the
result themselves, so no script re-judges it with a different rule.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

FALLBACK = "/"
# Printable ASCII but the space: kept as is; anything else (non-ASCII, spaces) is percent-encoded, as
# browsers would, so the result is always a valid Location header and href.
_KEEP = "".join(chr(c) for c in range(0x21, 0x7F))


def _is_local_path(value: str) -> bool:
    if not value.startswith("/") or value.startswith("//"):
        return False
    if "\\" in value or any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def safe_next(value: str | None) -> str:
    """``value`` when it is a path on this site (as browsers read it), else "/".

    Refused: anything with a scheme or host ("https:evil", "//evil", "/\\\\evil"), backslashes anywhere,
    control characters (tab, CR, LF included: browsers drop them, which can turn "/\\t/x" into "//x"),
    and the same once percent-decoded ("/%09/evil", "/%2F/evil", "/%5Cevil").
    """
    if not value or not isinstance(value, str):
        return FALLBACK
    if not _is_local_path(value) or not _is_local_path(unquote(value)):
        return FALLBACK
    try:
        return quote(value, safe=_KEEP)
    except UnicodeEncodeError:  # a lone surrogate: no browser sent that
        return FALLBACK
