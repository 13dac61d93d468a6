#!/usr/bin/env bash
# Installs uv into its own venv: the plugin-kit tests (tests/testing/test_scaffold.py, tests/examples/) make
# fresh virtualenvs with only `portal[testing]` and a plugin in them, and uv makes and fills one in seconds
# from its cache (pip would take a minute each). Idempotent: does nothing when uv already runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venvs/uv
if "$VENV/bin/uv" --version >/dev/null 2>&1; then
    exit 0
fi
mkdir -p .venvs
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check uv
"$VENV/bin/uv" --version
echo "kit.sh: uv installed in $VENV"
