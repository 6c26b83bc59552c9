#!/usr/bin/env bash
# Honest bots with and without attackers, one server, one run per attacker kind (issue 12).
# Server on CPU 0, bots and attackers on CPU 1, loopback only, each run bounded.
#   cargo build --release -p skirmish-server -p skirmish-bots && benches/abuse.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN_DIR:-target/release}
secs=${1:-20}
port=${PORT:-7791}
key=abuse-bench
taskset -c 0 "$bin/skirmish-server" --addr "127.0.0.1:$port" --no-results-file --admin-key "$key" \
  --min-players 1 --countdown 0s --match-duration 1h --write-timeout-ms 2000 --send-buffer 4096 \
  --rate-limit-loopback --api-burst 64 >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 50); do curl -fs "localhost:$port/healthz" >/dev/null && break; sleep 0.1; done
for attack in none flood-pings flood-inputs fragment-bomb slow-reader reconnect-storm; do
  extra=()
  [ "$attack" != none ] && extra=(--attack "$attack" --attackers 4)
  echo "== $attack"
  taskset -c 1 "$bin/skirmish-bots" --url "http://127.0.0.1:$port" --admin-key "$key" --bots 16 \
    --match-size 8 --duration "${secs}s" --ramp 1s --warmup 1s --quiet \
    --server-metrics "http://127.0.0.1:$port/api/stats" "${extra[@]}" |
    grep -E "snapshots per bot|input-to-ack|desyncs|decode errors|server CPU|overruns|attackers|server did|failure"
done
