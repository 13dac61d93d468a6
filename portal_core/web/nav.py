"""Navigation links plugins add to every page's header (the ``portal_nav_items`` hook)."""

from __future__ import annotations

import logging

from aiohttp import web

from .. import keys
from ..interfaces import User

log = logging.getLogger("portal.plugins")

MAX_LABEL = 40


def same_origin_path(href: object) -> bool:
    """A nav link may only point at a path on this site ("/x"), never elsewhere ("//evil", "https:…")."""
    return isinstance(href, str) and href.startswith("/") and not href.startswith("//") and "\\" not in href \
        and not any(ord(ch) < 0x20 for ch in href)


def nav_items(app: web.Application, user: User | None) -> list[dict[str, str]]:
    """Every plugin's links for ``user`` (None when signed out), in a stable order.

    A link must be a same-origin path with a short text label; anything else is dropped with a warning,
    so one plugin's mistake can neither break the header nor send customers off-site.
    """
    items: list[dict[str, str]] = []
    for group in reversed(app[keys.PLUGIN_MANAGER].hook.portal_nav_items(user=user, config=app[keys.CONFIG])):  # registration order
        for item in group or ():
            label, href = (item.get("label"), item.get("href")) if isinstance(item, dict) else (None, None)
            if not isinstance(label, str) or not label.strip() or len(label) > MAX_LABEL or not same_origin_path(href):
                log.warning("ignoring nav item %r: it needs a short text 'label' and a same-origin 'href' path", item)
                continue
            items.append({"label": label.strip(), "href": href})
    return items
