#!/usr/bin/env bash
# Installs Debian's HAProxy for tests/ops/test_rolling_deploy.py (the load balancer in front of three portal
# processes during a rolling deploy). The test runs it in the foreground on 127.0.0.1; the packaged service
# is not used. Idempotent.
set -euo pipefail
command -v haproxy >/dev/null && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends haproxy >/dev/null
haproxy -v | head -1
echo "haproxy.sh: installed haproxy"
