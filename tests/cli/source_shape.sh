#!/usr/bin/env bash
# style.source_shape: the house rules a reader relies on (docs/style.md). No line over 120 columns
# in the C++ and CUDA sources, and no source file over 450 lines in the product's folders
# (broker/, worker/, libbridge/, loadtest/, bridgectl/): a longer file is usually two components.
set -uo pipefail
cd "$1"
status=0
long_lines=$(find broker worker libbridge loadtest bridgectl python tests \( -name '*.cpp' -o -name '*.hpp' -o -name '*.cu' -o -name '*.cuh' \) \
  -exec awk 'length > 120 { printf "%s:%d: %d columns\n", FILENAME, FNR, length }' {} +)
if [ -n "$long_lines" ]; then
  echo "style.source_shape: lines over 120 columns (clang-format with the committed .clang-format folds them):"
  echo "$long_lines"
  status=1
fi
long_files=$(find broker worker libbridge loadtest bridgectl python \( -name '*.cpp' -o -name '*.hpp' -o -name '*.cu' \) \
  -exec awk 'END { if (FNR > 450) printf "%s: %d lines\n", FILENAME, FNR }' {} \;)
if [ -n "$long_files" ]; then
  echo "style.source_shape: files over 450 lines:"
  echo "$long_files"
  status=1
fi
[ $status -eq 0 ] && echo "style.source_shape: every line within 120 columns, every file within 450 lines"
exit $status
