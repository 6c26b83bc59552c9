#!/usr/bin/env bash
# Same-session comparison with the Colyseus peer: for each client count, one Colyseus run
# (its run.sh, server on CPU 0, load generator on CPU 1) then one Skirmish ladder step over
# WebSocket and one over UDP (same pinning), ROUNDS times, interleaved so that a change in the machine's speed hits both; then
# the send floor. Writes docs/bench/{colyseus-same-session.jsonl,skirmish-same-session.md,
# send-floor.md}. Run from the repository root after
#   cargo build --release -p skirmish-server -p skirmish-bots -p skirmish-benches
#   (cd ../shared/peers/colyseus && npm ci)
set -euo pipefail
cd "$(dirname "$0")/.."
PEER=${PEER:-../shared/peers/colyseus}
ROUNDS=${ROUNDS:-2}
COUNTS=${COUNTS:-"16 64 256 1024"}
OUT=${OUT:-docs/bench}
mkdir -p "$OUT"
tmp=$(mktemp -d)
: > "$OUT/colyseus-same-session.jsonl"
head -2 docs/bench/ladder.md > "$OUT/skirmish-same-session.md"
for r in $(seq 1 "$ROUNDS"); do
  for c in $COUNTS; do
    (cd "$PEER" && CLIENTS=$c ROOM_SIZE=16 TICK_HZ=30 DURATION=10 WARMUP=3 PIN=1 QUIET_WAIT=60 \
      timeout 600 ./run.sh) >> "$OUT/colyseus-same-session.jsonl"
    ./target/release/ladder --steps "$c" --duration 10s --transport ws,udp \
      --out-dir "$tmp/r$r-c$c" --all \
      | grep "^| [a-z]* | $c " >> "$OUT/skirmish-same-session.md"
  done
done
./target/release/send_floor --clients 256,1024 > "$OUT/send-floor.md"
rm -rf "$tmp"
