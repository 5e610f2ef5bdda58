#!/usr/bin/env bash
# Installs GpuBridge from BUILD_DIR into a scratch prefix, then configures, builds and runs the
# downstream project against it with find_package(GpuBridge).
set -euo pipefail
build_dir=$1; source_dir=$2; port=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" > "$scratch/install.log"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$source_dir" -B "$scratch/build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$scratch/prefix" > "$scratch/configure.log" \
  || { cat "$scratch/configure.log"; exit 1; }
cmake --build "$scratch/build" > "$scratch/build.log" || { cat "$scratch/build.log"; exit 1; }
"$scratch/build/downstream" "tcp://127.0.0.1:$port"
