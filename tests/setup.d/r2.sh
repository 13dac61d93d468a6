#!/usr/bin/env bash
# Installs moto (an S3 server speaking the real protocol) into its own venv for the R2 storage tests.
# moto pulls a newer botocore than aiobotocore pins, so it must not share the project's venv.
# Idempotent: does nothing when moto_server is already installed and importable.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venvs/moto
if [ -x "$VENV/bin/moto_server" ] && "$VENV/bin/python" -c "import moto.server, flask, flask_cors" 2>/dev/null; then
    exit 0
fi
mkdir -p .venvs
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[s3]" flask flask-cors
"$VENV/bin/python" -c "import moto.server, flask, flask_cors"
echo "r2.sh: moto installed in $VENV"
