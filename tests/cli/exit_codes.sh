#!/usr/bin/env bash
# cli.exit_codes: every program answers --help with 0, a command line it refuses with 2 and a
# message naming the flag, and a failure that is not the command line's with 1.
set -uo pipefail
build=$1
failures=0
expect() {  # expect CODE TEXT PROGRAM ARGS...
  local want=$1 text=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "cli.exit_codes: '$*' exited $rc, not $want: $out"; failures=$((failures + 1))
  elif [ -n "$text" ] && ! grep -qF -- "$text" <<<"$out"; then
    echo "cli.exit_codes: '$*' did not say '$text': $out"; failures=$((failures + 1))
  fi
}
for p in broker/bridge-broker worker/bridge-worker bridgectl/bridgectl loadtest/bridge-loadtest loadtest/bridge-chaos \
         loadtest/bridge-abuse loadtest/bridge-zmq-baseline; do
  expect 0 "Usage:" "$build/$p" --help
done
for p in broker/bridge-broker worker/bridge-worker loadtest/bridge-loadtest loadtest/bridge-chaos loadtest/bridge-abuse; do
  expect 2 "--no-such-flag" "$build/$p" --no-such-flag
done
expect 2 "--no-such-flag" "$build/bridgectl/bridgectl" status --no-such-flag
expect 2 "--no-such-flag" "$build/loadtest/bridge-zmq-baseline" echo --connect tcp://127.0.0.1:9 --no-such-flag
expect 2 "slots" "$build/worker/bridge-worker" --slots many
expect 2 "--security" "$build/broker/bridge-broker" --security maybe
expect 2 "cannot" "$build/broker/bridge-broker" --config /nonexistent/broker.yaml
expect 2 "subcommand is required" "$build/bridgectl/bridgectl"
expect 2 "--priority" "$build/bridgectl/bridgectl" submit sleep --priority 300
expect 2 "is not a number" "$build/bridgectl/bridgectl" submit vector_add --input a=1,x
expect 2 "--scenario" "$build/loadtest/bridge-loadtest"
# Nothing listens on port 9 of 127.0.0.1: the broker's answer never comes, which is a failure (1).
expect 1 "DEADLINE_EXCEEDED" "$build/bridgectl/bridgectl" --broker tcp://127.0.0.1:9 --timeout 200 status
expect 0 "wrote" "$build/bridgectl/bridgectl" keygen "$(mktemp -d)/k"
[ "$failures" -eq 0 ] && echo "cli.exit_codes: all as documented"
exit $((failures > 0))
