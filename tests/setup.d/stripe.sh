#!/usr/bin/env bash
# Installs localstripe (a stateful fake of Stripe's API on aiohttp) into its own venv for the Stripe
# billing tests. tests/fakes/stripe_fake.py runs on that venv's python: it serves localstripe's routes
# plus Prices, Checkout and the Billing Portal on 127.0.0.1 with state in memory.
# Pinned: the fake builds on localstripe's internals (server middlewares, resource classes).
# Idempotent: does nothing when the pinned version is already installed and importable.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venvs/localstripe
VERSION=1.15.10
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import localstripe.server  # noqa: F401  (imports aiohttp and the resources too)
sys.exit(0 if version("localstripe") == sys.argv[1] else 1)
PY
then
    exit 0
fi
mkdir -p .venvs
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "localstripe==$VERSION"
"$VENV/bin/python" -c "import localstripe.server"
echo "stripe.sh: localstripe $VERSION installed in $VENV"
