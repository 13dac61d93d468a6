#!/usr/bin/env bash
# Installs what the operations tests (tests/ops/) need beyond the venv: buildah to build and run the
# container image without a Docker engine, debootstrap to make its Python base image locally (no registry
# is reachable here), and the PostgreSQL server binaries for the throwaway cluster the restart test stops.
# Also the official Prometheus client in its own venv (.venvs/ops): its parser reads GET /metrics the way
# a Prometheus server would. Idempotent: does nothing when everything is installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venvs/ops
if ! "$VENV/bin/python" -c "import prometheus_client.parser" 2>/dev/null; then
  mkdir -p .venvs
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check prometheus-client
  "$VENV/bin/python" -c "import prometheus_client.parser"
  echo "ops.sh: prometheus-client installed in $VENV"
fi
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
buildah --version
echo "ops.sh: installed ${need[*]}"
