"""The portal's test kit, for plugins outside this repository and for the portal's own tests.

Installed with ``pip install 'portal[testing]'`` and registered as a pytest plugin (the ``pytest11``
entry point ``portal``), so its fixtures are there in any test suite with no conftest:

- ``portal_db``: a fresh, provisioned database (on ``PORTAL_TEST_DATABASE_URL``'s server, or on a throwaway
  PostgreSQL started the way DEV_MODE starts one), dropped afterwards;
- ``portal_app`` / ``portal_client``: the real application from ``create_app``, in-process, in DEV_MODE,
  with the settings of ``portal_env`` and the extra plugin objects of ``portal_plugins`` (override either
  fixture, or mark a test ``@pytest.mark.portal(env={...}, plugins=[...])``);
- ``captured_events``: every event the portal delivers to plugins during the test;
- ``portal_pool``: an aiopg pool on ``portal_db``, for building a service directly.

Helpers: :func:`signed_in` (a customer signed in through the development sign-in), :func:`create_user`,
:func:`make_portal_app`. Conformance suites for service implementations, as base classes:
:class:`StorageConformance`, :class:`BillingConformance`, :class:`AuthConformance` (subclass one in a test
module, give it a ``storage`` / ``billing`` / ``auth`` fixture, run pytest). docs/plugins.md ("Testing a
plugin") shows each in use.
"""

import pytest

# Before the suites are imported, so their asserts explain themselves when a backend fails a case.
pytest.register_assert_rewrite("portal_core.testing.conformance", "portal_core.testing.client")

from .client import SignedIn, browser_multipart, close_signed_in, signed_in  # noqa: E402
from .conformance.auth import AuthConformance  # noqa: E402
from .conformance.billing import BillingConformance  # noqa: E402
from .conformance.storage import StorageConformance  # noqa: E402
from .events import CapturedEvents  # noqa: E402
from .portal import create_user, make_portal_app  # noqa: E402

__all__ = [
    "AuthConformance", "BillingConformance", "CapturedEvents", "SignedIn", "StorageConformance",
    "browser_multipart", "close_signed_in", "create_user", "make_portal_app", "signed_in",
]
