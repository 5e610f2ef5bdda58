#!/usr/bin/env bash
# python.install: the package the build made installs into a fresh virtual environment with pip
# (no network), and imports there from outside the source and build trees, its native module and
# libgpubridge.so.0 coming from the environment.
set -euo pipefail
source_dir=$1 package=$2
venv=$(mktemp -d -t gpubridge-venv-XXXXXX)
trap 'rm -rf "$venv"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$source_dir/scripts/lib/pip-install-package.sh" "$package" "$venv"
cd /
"$venv/bin/python" - "$venv" <<'PY'
import os, sys
import gpubridge, gpubridge._gpubridge as native
venv = os.path.realpath(sys.argv[1])
for module in (gpubridge, native):
    path = os.path.realpath(module.__file__)
    assert path.startswith(venv), f"{module.__name__} imported from {path}, not from the environment {venv}"
maps = open("/proc/self/maps").read()
lib = [line.split()[-1] for line in maps.splitlines() if "libgpubridge.so" in line]
assert lib and all(os.path.realpath(p).startswith(venv) for p in lib), lib
assert issubclass(gpubridge.UnknownKernel, gpubridge.Error)
print("python.install: gpubridge", gpubridge.__file__, "with", lib[0])
PY
