#!/usr/bin/env bash
# Installs what the operations tests (tests/ops/) need beyond the venv: buildah to build and run the
# container image without a Docker engine, debootstrap to make its Python base image locally (no registry
# is reachable here), and the PostgreSQL server binaries for the throwaway cluster the restart test stops.
# Idempotent: does nothing when everything is installed.
set -euo pipefail
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
