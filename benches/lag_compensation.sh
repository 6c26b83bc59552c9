#!/usr/bin/env bash
# Lag compensation (issue 17): the hit rate of aggressive bots at 0 and 150 ms round trip,
# with the server's lag compensation on (--max-rewind 200ms, the default) and off (0), in
# one run. Each row is a fresh server (loopback, stopped by its PID) with one 16-player
# match: 12 wandering bots as targets and 4 aggressive bots (UDP) whose hit rate is
# measured over DURATION after a 3 s ramp; the 150 ms rows give the aggressive bots 75 ms
# of one-way latency per packet in both directions. (With 16 aggressive bots they tag each
# other about once a second, and a shooter that was tagged keeps firing from where it was
# until it hears of it, a round trip later: that, not the targets' motion, then dominates.)
#
# Build first: cargo build --release -p skirmish-server -p skirmish-bots
# Usage: benches/lag_compensation.sh [DURATION] [OUT_DIR]   (default 30s, docs/bench/lag-compensation)
set -euo pipefail
duration="${1:-30s}"
out="${2:-docs/bench/lag-compensation}"
mkdir -p "$out"
port=7791
run() { # rewind latency_ms name
  target/release/skirmish-server --addr "127.0.0.1:$port" --no-replays --match-size 16 \
    --max-rewind "$1" --min-players 16 --countdown 1s --match-duration 10m \
    --results-path /dev/null >/dev/null 2>&1 &
  local server=$!
  sleep 1
  target/release/skirmish-bots --url "http://127.0.0.1:$port" --bots 12 --match-size 0 \
    --behavior wander --transport udp --ramp 1s --duration "$duration" >/dev/null 2>&1 &
  local targets=$!
  sleep 1.5
  target/release/skirmish-bots --url "http://127.0.0.1:$port" --bots 4 --match-size 0 \
    --behavior aggressive --transport udp --sim-latency-ms "$2" --ramp 3s \
    --duration "$duration" --json "$out/$3.json" > "$out/$3.txt" 2>&1 || true
  wait "$targets" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  port=$((port + 1))
}
for round in ${ROUNDS:-1 2 3}; do
  run 200ms 0 "on-0ms-$round"
  run 200ms 75 "on-150ms-$round"
  run 0ms 0 "off-0ms-$round"
  run 0ms 75 "off-150ms-$round"
done
printf '%-16s %10s %8s %8s %18s\n' run "hit rate" hits shots "shot corrections"
for f in "$out"/*.json; do
  python3 - "$f" <<'PY'
import json, sys, os
r = json.load(open(sys.argv[1]))
name = os.path.basename(sys.argv[1])[:-5]
print(f"{name:<16} {100*r['hit_rate']:9.1f}% {r['hits']:8} {r['shots']:8} {r['shot_corrections']:18}")
PY
done
