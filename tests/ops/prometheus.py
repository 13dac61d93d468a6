"""Read GET /metrics with the official Prometheus client's parser (in .venvs/ops, from tests/setup.d/ops.sh)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

PYTHON = Path(__file__).resolve().parents[2] / ".venvs" / "ops" / "bin" / "python"
_PARSE = """
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        out.append({"family": family.name, "type": family.type, "name": sample.name,
                    "labels": sample.labels, "value": sample.value})
print(json.dumps(out))
"""


def parse(text: str) -> list[dict]:
    """Every sample as {family, type, name, labels, value}; fails when the text is not valid exposition format."""
    if not PYTHON.exists():
        pytest.fail(f"{PYTHON} is missing: run tests/setup.d/ops.sh (installs prometheus-client)", pytrace=False)
    result = subprocess.run([str(PYTHON), "-c", _PARSE], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"Prometheus could not parse /metrics: {result.stderr}\n{text[:2000]}"
    return json.loads(result.stdout)


def value(samples: list[dict], name: str, **labels: str) -> float | None:
    """The value of the one sample called ``name`` with exactly ``labels`` (None when absent)."""
    found = [s["value"] for s in samples if s["name"] == name and s["labels"] == labels]
    assert len(found) <= 1, f"{name}{labels} appears {len(found)} times"
    return found[0] if found else None
