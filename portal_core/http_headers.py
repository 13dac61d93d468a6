"""Header values that must be built carefully: filenames are customer data, never trusted text."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from .display import display_text


def ascii_fallback(filename: str) -> str:
    """An ASCII-only, quote-safe stand-in for ``filename`` (for old clients and the plain filename=)."""
    # Bidi controls never reach it (they would make the name display reversed); filename*= keeps them.
    decomposed = unicodedata.normalize("NFKD", display_text(filename))
    chars = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        if ch.isascii() and ch.isprintable() and ch not in '"\\/;':
            chars.append(ch)
        else:
            chars.append("_")
    return "".join(chars).strip() or "download"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name as RFC 5987 ``filename*``."""
    return f"attachment; filename=\"{ascii_fallback(filename)}\"; filename*=UTF-8''{quote(filename, safe='')}"
