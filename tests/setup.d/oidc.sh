#!/usr/bin/env bash
# Installs the test OpenID Connect provider (panva/oidc-provider, see tests/oidc_provider/) with
# `npm ci` from its committed package-lock.json. Idempotent: skips the install when node_modules
# was built from the current lock file (a stamp holds the lock file's hash).
set -euo pipefail
cd "$(dirname "$0")/../oidc_provider"
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "oidc.sh: '$tool' is not installed; the OIDC tests need Node.js 20+ and npm (apt-get install nodejs npm)" >&2
        exit 1
    fi
done
major=$(node --version | sed -E 's/^v([0-9]+).*/\1/')
if [ "$major" -lt 20 ]; then
    echo "oidc.sh: node $(node --version) is too old; oidc-provider needs Node.js 20+ (scripts/test installs it into .venvs/node)" >&2
    exit 1
fi
STAMP=node_modules/.portal-lock.sha256
WANT=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -d node_modules/oidc-provider ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$WANT" > "$STAMP"
echo "oidc.sh: oidc-provider installed in tests/oidc_provider/node_modules"
