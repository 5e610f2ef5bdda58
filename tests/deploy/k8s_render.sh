#!/usr/bin/env bash
# Renders deploy/k8s/base with `kubectl kustomize` and checks what it makes (k8s_check.py). No
# cluster: nothing is applied. Exit 77 (skipped, saying why) without kubectl.
set -euo pipefail
root=$1
kubectl=${KUBECTL:-$(command -v kubectl || true)}
if [ -z "$kubectl" ]; then
  echo "k8s_render: SKIPPED: no kubectl (scripts/install-deps installs Debian's kubernetes-client)" >&2
  exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$kubectl" version --client 2>/dev/null | head -n 1 || true
"$kubectl" kustomize "$root/deploy/k8s/base" > "$out"
python3 "$root/tests/deploy/k8s_check.py" "$root" "$out"
