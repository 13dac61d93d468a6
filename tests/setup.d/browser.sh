#!/usr/bin/env bash
# Installs Debian's Chromium for the Playwright journey in tests/browser/.
# Playwright's own browser download (`playwright install`) cannot reach its CDN here, so the tests drive
# the distribution's /usr/bin/chromium instead. Idempotent: does nothing when it is already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version
echo "browser.sh: chromium installed at /usr/bin/chromium"
