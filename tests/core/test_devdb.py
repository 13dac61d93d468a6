"""DEV_MODE without DATABASE_URL: the portal runs its own throwaway PostgreSQL and stops it on exit."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request

from portal_core.devdb import find_bin_dir
from tests.support.portal import start_portal


def postgres_processes_for(path: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if "postgres" in line and path in line]


def test_dev_mode_without_database_url_starts_and_stops_its_own_postgres():
    assert find_bin_dir() is not None, "PostgreSQL's server binaries are needed (apt-get install postgresql)"
    portal = start_portal(None, wait=True)
    try:
        health = json.load(urllib.request.urlopen(portal.url + "/health"))
        assert health["checks"]["database"]["status"] == "ok"
        log = portal.log()
        assert "started a throwaway PostgreSQL in" in log and "DEV_MODE is on" in log
        cluster = re.search(r"throwaway PostgreSQL in (\S+) \(log: (\S+)\)", log)
        assert cluster and cluster.group(1).startswith(str(portal.data_dir))
        assert postgres_processes_for(str(portal.data_dir)), "no PostgreSQL runs for this data directory"
    finally:
        assert portal.stop() == 0
    assert "stopped the throwaway PostgreSQL" in portal.log()
    assert postgres_processes_for(str(portal.data_dir)) == []
    portal.remove()
