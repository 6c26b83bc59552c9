#!/usr/bin/env bash
# The replay viewer's seek time on a five-minute 16-player replay (issue 16): writes the
# replay (`replay_fixture`), serves it from a release server on 127.0.0.1, seeks in headless
# Chromium (`server/web/test/browser/seek.mjs`), stops the server by its PID.
# Build first: cargo build --release -p skirmish-server && cargo build --release -p
# skirmish-benches --bin replay_fixture; and `npm ci` in server/web/test/browser.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
port=${PORT:-7796}
target/release/replay_fixture --dir "$dir/replays" --length "${LENGTH:-5m}"
taskset -c 0 target/release/skirmish-server --addr "127.0.0.1:$port" --replay-dir "$dir/replays" \
  --no-results-file --open > "$dir/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
  sleep 0.1
done
node server/web/test/browser/seek.mjs "http://127.0.0.1:$port"
