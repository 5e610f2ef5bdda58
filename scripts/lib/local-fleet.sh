# Sourced by scripts that need a local fleet on 127.0.0.1 (scripts/demo, loadtest/fairness).
#
#   fleet_start BUILD_DIR TENANTS_FILE WORKERS SLOTS [BROKER_FLAG...]
#       starts redis-server, bridge-broker ($FLEET_BROKER_CONFIG, default config/broker.yaml, + flags) and WORKERS CPU workers in a
#       temporary directory on free ports, and waits until the broker sees Redis and every worker.
#       Sets FLEET_DIR, FLEET_FRONTEND, FLEET_BACKEND, FLEET_REDIS_PORT, FLEET_BROKER_PID, FLEET_CTL. Workers also get
#       the flags in the array FLEET_WORKER_FLAGS, if set.
#       Secured like a real fleet (docs/security.md): keys are made in FLEET_KEYS ($FLEET_DIR/keys) with
#       bridgectl keygen — broker, worker, operator and one per tenant of TENANTS_FILE, listed under it in
#       the copy the broker reads ($FLEET_DIR/tenants.yaml) — and GPUBRIDGE_KEYS_DIR is exported, so the
#       load tools connect each tenant T with $FLEET_KEYS/T.key. FLEET_CTL acts as tenant "default",
#       FLEET_OPS_CTL with the operator key (every tenant in quota show). FLEET_SECURITY=none: no keys.
#   fleet_stop
#       stops them all (SIGTERM, then waits) and removes FLEET_DIR unless FLEET_KEEP is set.
# The caller installs the traps (fleet_stop on EXIT; INT/TERM as it likes).

fleet_pids=()
FLEET_WORKER_FLAGS=("${FLEET_WORKER_FLAGS[@]}")

# A port nothing listens on: a connection attempt to it is refused. Taken below the kernel's range
# of ephemeral ports (net.ipv4.ip_local_port_range), where an outgoing connection could hold it.
fleet_free_port() {
  local port low=32768
  read -r low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$low" -gt 21000 ] || low=32768
  while :; do
    port=$((20000 + RANDOM % (low - 20000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

# fleet_make_keys BUILD_DIR TENANTS_FILE: the keys and the enrolled copy of TENANTS_FILE (see above).
fleet_make_keys() {
  local build_dir=$1 tenants=$2 name
  FLEET_KEYS=$FLEET_DIR/keys
  mkdir -p "$FLEET_KEYS"
  local names
  names=$(awk '/^tenants:/ {in_t = 1; next} /^[^ #]/ {in_t = 0} in_t && match($0, /^  [A-Za-z0-9._-]+:/) {
                 print substr($0, 3, RLENGTH - 3)}' "$tenants")
  for name in broker worker operator $names; do "$build_dir/bridgectl/bridgectl" keygen "$FLEET_KEYS/$name" > /dev/null; done
  public_key() { sed -n 's/^ *public-key = "\(.*\)"/\1/p' "$FLEET_KEYS/$1.pub"; }
  printf 'keys:\n  - "%s"\n' "$(public_key worker)" > "$FLEET_KEYS/workers.yaml"
  # Each tenant entry (`  name:` or `  name: {}`) gets its key; anything else is refused here.
  awk -v keys="$FLEET_KEYS" '
    function key(n,   line, k) { while ((getline line < (keys "/" n ".pub")) > 0)
                                   if (line ~ /public-key/) { k = line; sub(/^[^"]*"/, "", k); sub(/".*$/, "", k) }
                                 close(keys "/" n ".pub"); return k }
    /^operator_keys:/ {next}
    /^tenants:/ {in_t = 1; print; next}
    /^[^ #]/ {in_t = 0}
    in_t && match($0, /^  [A-Za-z0-9._-]+:/) {
      n = substr($0, 3, RLENGTH - 3); rest = substr($0, RLENGTH + 1); sub(/#.*/, "", rest); gsub(/ /, "", rest)
      if (rest != "" && rest != "{}") { print "local-fleet: cannot enroll tenant " n ": write it as `" n ":` or `" n ": {}`" > "/dev/stderr"; exit 1 }
      print "  " n ":"; print "    keys: [\"" key(n) "\"]"; next }
    {print}
    END {print "operator_keys: [\"" key("operator") "\"]"}' "$tenants" > "$FLEET_DIR/tenants.yaml"
  export GPUBRIDGE_KEYS_DIR=$FLEET_KEYS
}

fleet_start() {
  local build_dir=$1 tenants=$2 workers=$3 slots=$4
  shift 4
  FLEET_DIR=$(mktemp -d -t gpubridge-fleet-XXXXXX)
  FLEET_REDIS_PORT=$(fleet_free_port)
  FLEET_FRONTEND=tcp://127.0.0.1:$(fleet_free_port)
  FLEET_BACKEND=tcp://127.0.0.1:$(fleet_free_port)
  FLEET_CTL="$build_dir/bridgectl/bridgectl --broker $FLEET_FRONTEND --timeout 5000"
  FLEET_OPS_CTL=$FLEET_CTL
  unset GPUBRIDGE_KEYS_DIR  # an earlier secured fleet's; set again below when this one is secured
  local security=(--security none) worker_keys=()
  if [ "${FLEET_SECURITY:-curve}" != none ]; then
    fleet_make_keys "$build_dir" "$tenants"
    tenants=$FLEET_DIR/tenants.yaml
    security=(--security curve --secret-key-file "$FLEET_KEYS/broker.key" --workers "$FLEET_KEYS/workers.yaml")
    worker_keys=(--key-file "$FLEET_KEYS/worker.key" --broker-key-file "$FLEET_KEYS/broker.pub")
    FLEET_OPS_CTL="$FLEET_CTL --key-file $FLEET_KEYS/operator.key --broker-key-file $FLEET_KEYS/broker.pub"
    FLEET_CTL="$FLEET_CTL --key-file $FLEET_KEYS/default.key --broker-key-file $FLEET_KEYS/broker.pub"
    [ -f "$FLEET_KEYS/default.key" ] || FLEET_CTL=$FLEET_OPS_CTL
  fi
  local _ attempt
  for attempt in 1 2 3 4 5; do  # a port taken between the probe and the bind: try another
    "$(command -v redis-server || echo /usr/bin/redis-server)" --port "$FLEET_REDIS_PORT" --bind 127.0.0.1 --save '' \
      --appendonly no --dir "$FLEET_DIR" >> "$FLEET_DIR/redis.log" 2>&1 &
    local redis_pid=$!
    for _ in $(seq 100); do
      redis-cli -p "$FLEET_REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.05
    done
    if kill -0 "$redis_pid" 2>/dev/null; then
      fleet_pids+=("$redis_pid")
      break
    fi
    FLEET_REDIS_PORT=$(fleet_free_port)
  done
  "$build_dir/broker/bridge-broker" --config "${FLEET_BROKER_CONFIG:-config/broker.yaml}" --tenants "$tenants" \
    --frontend "$FLEET_FRONTEND" --backend "$FLEET_BACKEND" --redis "redis://127.0.0.1:$FLEET_REDIS_PORT/0" "${security[@]}" "$@" \
    > "$FLEET_DIR/broker.log" 2>&1 &
  FLEET_BROKER_PID=$!
  fleet_pids+=("$FLEET_BROKER_PID")
  local i
  for i in $(seq "$workers"); do
    "$build_dir/worker/bridge-worker" --config config/worker.yaml --broker "$FLEET_BACKEND" --id "fleet-worker-$i" \
      --slots "$slots" "${worker_keys[@]}" "${FLEET_WORKER_FLAGS[@]}" > "$FLEET_DIR/worker-$i.log" 2>&1 &
    fleet_pids+=($!)
  done
  local status
  for _ in $(seq 100); do
    status=$($FLEET_OPS_CTL status --json 2>/dev/null || true)
    if grep -q '"redis_connected":true' <<<"$status" && [ "$(grep -o '"id"' <<<"$status" | wc -l)" -eq "$workers" ]; then
      return 0
    fi
    sleep 0.1
  done
  echo "local-fleet: the fleet did not come up; logs:" >&2
  tail -n 20 "$FLEET_DIR"/*.log >&2
  return 1
}

fleet_stop() {
  local pid
  for pid in "${fleet_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${fleet_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  fleet_pids=()
  if [ -n "${FLEET_DIR:-}" ]; then
    if [ -n "${FLEET_KEEP:-}" ]; then echo "local-fleet: logs kept in $FLEET_DIR"; else rm -rf "$FLEET_DIR"; fi
  fi
}
