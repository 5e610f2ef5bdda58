#!/usr/bin/env bash
# abi.exports: libgpubridge exports the public client API and nothing else. Every defined dynamic
# symbol must be a `bridge::` name (or its typeinfo or vtable) outside bridge::core and
# bridge::wire, and the API a user calls must be there.
set -euo pipefail
lib=$1
symbols=$(nm -DC --defined-only "$lib" | cut -d' ' -f3-)
[ -n "$symbols" ] || { echo "abi.exports: $lib exports nothing" >&2; exit 1; }
stray=$(grep -Ev '^((typeinfo|typeinfo name|vtable) for )?bridge::' <<< "$symbols" || true)
internal=$(grep -E '^((typeinfo|typeinfo name|vtable) for )?bridge::(core|wire|worker|broker)::' <<< "$symbols" || true)
status=0
if [ -n "$stray" ]; then
  echo "abi.exports: $lib exports names outside namespace bridge:" >&2
  head -20 <<< "$stray" >&2
  status=1
fi
if [ -n "$internal" ]; then
  echo "abi.exports: $lib exports internal names:" >&2
  head -20 <<< "$internal" >&2
  status=1
fi
for wanted in 'bridge::Client::Client(' 'bridge::Client::run(' 'bridge::Client::submit(' 'bridge::Tensor::' \
              'bridge::Status::to_string' 'bridge::status_code_name' 'bridge::Pipeline::' \
              'bridge::Actor::' 'bridge::Stream::'; do
  grep -qF "$wanted" <<< "$symbols" || { echo "abi.exports: $lib does not export $wanted" >&2; status=1; }
done
[ $status -eq 0 ] && echo "abi.exports: $(wc -l <<< "$symbols") symbols, all public bridge:: API"
exit $status
