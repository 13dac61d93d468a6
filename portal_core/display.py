"""Text from customers, as pages show it: bidirectional-text controls made visible and inert.

A right-to-left override (U+202E) inside a file name makes "evil\u202etxt.exe" display as "evilexe.txt".
Names are data and are stored exactly as given; only where one is displayed does each bidi control —
the embeddings and overrides U+202A–U+202E, the isolates U+2066–U+2069 and the marks U+200E, U+200F and
U+061C — become U+FFFD, so the name reads in the order it really is and shows that something was there.
The front end applies the same list (assets/js/format.js, ``displayText``); a test compares the two.
"""

from __future__ import annotations

BIDI_CONTROLS = frozenset(chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)))
SHOWN_AS = "\ufffd"
_TABLE = {ord(ch): SHOWN_AS for ch in BIDI_CONTROLS}


def display_text(text: str) -> str:
    """``text`` as it may be displayed: every bidi control replaced by U+FFFD."""
    return text.translate(_TABLE)
