#!/usr/bin/env bash
# The game client's frame rate under Xvfb (Mesa's software Vulkan), on the scene the README
# quotes: a 16-player match filled with 15 demo bots (in the server's process), the client
# playing the 16th seat for DURATION; prints the client's exit summary (frames per second,
# corrections, snapshots). The server is stopped by its PID.
#
# Build first: cargo build --release -p skirmish-server, and the client in the profile to
# measure, e.g. cargo build --profile client -p skirmish-client (target/client/).
# Usage: benches/client_fps.sh CLIENT_BINARY [DURATION [CLIENT FLAGS...]]   (default 60s;
# e.g. `--autopilot --sim-latency-ms 75` to count its own-shot corrections at 150 ms)
set -euo pipefail
client="$1"
duration="${2:-60s}"
shift $(( $# >= 2 ? 2 : 1 ))
port=7871
target/release/skirmish-server --addr "127.0.0.1:$port" --demo 15 --no-replays \
  --results-path /dev/null >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null' EXIT
sleep 2
xvfb-run -a --server-args="-screen 0 1280x900x24" "$client" --play \
  --url "http://127.0.0.1:$port" --name fps --exit-after "$duration" "$@" 2>/dev/null \
  | grep '^skirmish-client:'
