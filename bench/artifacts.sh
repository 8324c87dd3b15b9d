#!/bin/bash
# The broker's memory while many large artifacts arrive at once (issue 17,
# docs/benchmarks.md "Artifacts"): a local stack (broker, gateway, WORKERS
# command workers of SLOTS slots) runs EXECUTIONS one-phase executions at once,
# each agent leaving one file of MIB MiB of random bytes in artifacts/output.
# The broker's resident set is sampled every 50 ms from /proc while they arrive;
# printed: its size before, its peak, the bytes stored, and the peak over bytes
# stored (what a broker holding everything in memory would need is that bytes).
#
#   bench/artifacts.sh [EXECUTIONS] [MIB] [WORKERS] [SLOTS]   (default 16 16 4 4)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SYN_BIN_DIR:-$here/../build/bin}
executions=${1:-16}
mib=${2:-16}
workers=${3:-4}
slots=${4:-4}
dir=$(mktemp -d /tmp/syn-bench-artifacts-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; [ -f "$dir/submit.log" ] && tail -c 300 "$dir/submit.log" >&2; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
c=$(port); w=$(port); e=$(port); h=$(port)
cat > "$dir/agent.sh" <<AGENT
#!/bin/sh
cat > /dev/null
head -c $((mib * 1024 * 1024)) /dev/urandom > artifacts/output/blob.bin
echo done
AGENT
chmod +x "$dir/agent.sh"
"$bin/syn-broker" --data "$dir/var" --clients tcp://127.0.0.1:$c --workers tcp://127.0.0.1:$w \
    --events tcp://127.0.0.1:$e --log-level warn 2> "$dir/broker.log" &
broker=$!; pids+=($broker)
"$bin/syn-gateway" --http 127.0.0.1:$h --broker tcp://127.0.0.1:$c --events tcp://127.0.0.1:$e \
    --log-level warn 2> "$dir/gateway.log" &
pids+=($!)
for i in $(seq "$workers"); do
    "$bin/syn-worker" --broker tcp://127.0.0.1:$w --provider command --command "$dir/agent.sh" \
        --slots "$slots" --sandbox none --workspace "$dir" --name "w$i" --log-level warn \
        2> "$dir/worker$i.log" &
    pids+=($!)
done
url=http://127.0.0.1:$h
for _ in $(seq 100); do
    curl -sf "$url/health" | grep -q "\"workers\": *$workers\|\"connected\": *$workers" && break
    sleep 0.1
done
curl -sf -X POST "$url/workflows" -H 'Content-Type: application/json' -d '{"id":"blob",
    "name":"Blob","phases":[{"phase_id":"make","name":"Make","order":1,
    "prompt_template":"go"}]}' > /dev/null
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$broker/status"; }
before=$(rss)
peak=$before
ids=()
for i in $(seq "$executions"); do
    ids+=($(curl -sf --retry 20 --retry-all-errors --retry-delay 1 -X POST "$url/workflows/blob/execute" -H 'Content-Type: application/json' \
        -d '{}' | tee -a "$dir/submit.log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["execution_id"])'))
done
start=$(date +%s.%N)
while :; do
    now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
    left=$(sqlite3 -readonly "$dir/var/syn.db" \
        "SELECT count(*) FROM executions WHERE status NOT IN ('completed','failed','cancelled')" \
        2>/dev/null || echo 1)
    [ "$left" = 0 ] && break
    sleep 0.05
done
took=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }")
stored=$(sqlite3 -readonly "$dir/var/syn.db" "SELECT coalesce(sum(size), 0) FROM artifacts WHERE complete = 1")
completed=$(sqlite3 -readonly "$dir/var/syn.db" "SELECT count(*) FROM executions WHERE status = 'completed'")
echo "artifacts: $executions executions x $mib MiB, $workers workers x $slots slots: $completed completed in ${took}s"
awk -v b="$before" -v p="$peak" -v s="$stored" 'BEGIN {
    printf "broker RSS before %.1f MiB, peak %.1f MiB (+%.1f MiB) while %.1f MiB of artifacts arrived (peak growth / bytes stored = %.3f)\n",
           b / 1024, p / 1024, (p - b) / 1024, s / 1048576, (p - b) * 1024 / s }'
