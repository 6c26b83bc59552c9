cd /work/main
port=7850
for lat in 75 75 75 0 0; do
target/release/skirmish-server --addr "127.0.0.1:$port" --no-replays --match-size 16 --min-players 16 --countdown 1s --match-duration 10m --results-path /dev/null >/dev/null 2>&1 &
s=$!; sleep 1
target/release/skirmish-bots --url "http://127.0.0.1:$port" --bots 12 --match-size 0 --behavior wander --transport udp --ramp 1s --duration 60s >/dev/null 2>&1 &
w=$!; sleep 1.5
target/release/skirmish-bots --url "http://127.0.0.1:$port" --bots 4 --match-size 0 --behavior aggressive --transport udp --sim-latency-ms $lat --ramp 3s --duration 60s 2>&1 | grep -E "DIAG|hit rate" | sed "s#^#lat=$lat #"
wait $w; kill $s; wait $s 2>/dev/null; port=$((port+1))
done
