"""The vendored hash-wasm build is the one SOURCE.txt names (scripts/vendor-hash-wasm refreshes both), ships with
its licence, and the worker loads exactly that file."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "assets" / "vendor" / "hash_wasm"


def test_the_vendored_hash_wasm_is_what_source_txt_records_with_its_licence():
    source = (VENDOR / "SOURCE.txt").read_text()
    version = re.search(r"^hash-wasm (\d+\.\d+\.\d+) from the npm registry", source, re.M).group(1)
    recorded = re.search(r"sha256\.umd\.min\.js sha256: ([0-9a-f]{64})", source).group(1)
    script = (VENDOR / "sha256.umd.min.js").read_bytes()
    assert hashlib.sha256(script).hexdigest() == recorded, "run scripts/vendor-hash-wasm instead of editing the file"
    assert script.startswith(b"/*!\n * hash-wasm") and b"@license MIT" in script[:200]
    assert "MIT License" in (VENDOR / "LICENSE.txt").read_text()
    assert f'VERSION="${{1:-{version}}}"' in (ROOT / "scripts" / "vendor-hash-wasm").read_text()
    worker = (ROOT / "assets" / "js" / "sha256-worker.js").read_text()
    assert "importScripts('../vendor/hash_wasm/sha256.umd.min.js')" in worker
