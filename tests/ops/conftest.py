"""Fixtures for the operations tests: a DEV_MODE portal process and an API token on its database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.db import create_token, create_user
from tests.support.portal import PortalProcess, run_portal


@pytest.fixture
def dev_portal(database_url: str) -> Iterator[PortalProcess]:
    """A DEV_MODE portal (dev sign-in, local storage, dev billing) on a fresh database."""
    with run_portal(database_url) as portal:
        yield portal


@pytest.fixture
def api_token(database_url: str) -> str:
    """An API token of a fresh user, as POST /api/tokens would have made it."""
    return create_token(database_url, create_user(database_url, email="ops@example.com", name="Ops"))
