#!/usr/bin/env bash
# pip-install-package.sh PACKAGE_DIR VENV: installs the package directory the build made into VENV,
# from a copy (pip writes build/ and *.egg-info where it builds), without the network.
set -euo pipefail
package=$1 venv=$2
[ -f "$package/pyproject.toml" ] || { echo "no package at $package: build with -DBRIDGE_PYTHON=ON" >&2; exit 1; }
work=$(mktemp -d -t gpubridge-pip-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$package/gpubridge" "$package/pyproject.toml" "$work/"
rm -rf "$work/gpubridge/__pycache__"
"$venv/bin/python" -m pip install --quiet --no-build-isolation --no-index --force-reinstall --no-deps "$work"
