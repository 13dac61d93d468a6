#!/usr/bin/env bash
# Installs the real Uppy (the `uppy` package: its one-file ES module bundle, which carries @uppy/aws-s3) for
# the browser test that drives the portal's /api/s3 with it (tests/browser/test_direct_uploads.py), with
# `npm ci` from the committed package-lock.json. Idempotent: skips the install when node_modules was built
# from the current lock file (a stamp holds the lock file's hash).
set -euo pipefail
cd "$(dirname "$0")/../browser/uppy"
if ! command -v npm >/dev/null 2>&1; then
    echo "uppy.sh: npm is not installed; the Uppy browser test needs Node.js and npm (apt-get install nodejs npm)" >&2
    exit 1
fi
STAMP=node_modules/.portal-lock.sha256
WANT=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -f node_modules/uppy/dist/uppy.min.mjs ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$WANT" > "$STAMP"
echo "uppy.sh: uppy installed in tests/browser/uppy/node_modules"
