"""portal: a customer portal on a pluggy platform. Plugins import ``hookimpl`` from here.

``HOOKS_VERSION`` is the version of the hook contract (docs/plugins.md, "Compatibility"); a plugin that
needs a newer one says so with ``PORTAL_REQUIRES_HOOKS`` and `portal plugins` warns on an older core.
"""

from importlib.metadata import PackageNotFoundError, version

from .hookspecs import HOOKS_VERSION, hookimpl

try:
    __version__ = version("portal")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["HOOKS_VERSION", "hookimpl", "__version__"]
