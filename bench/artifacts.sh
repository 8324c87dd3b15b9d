#!/bin/bash
# The broker's memory while many large artifacts arrive at once (issue 17,
# docs/benchmarks.md "Artifacts"): a local stack (broker, gateway, WORKERS
# command workers of SLOTS slots) runs EXECUTIONS one-phase executions at once,
# each agent leaving one file of MIB MiB of random bytes in artifacts/output.
# The broker's resident set is sampled every 50 ms from /proc while they arrive;
# printed: its size before, its peak, the bytes stored, and the peak over bytes
# stored (what a broker holding everything in memory would need is that bytes).
# Meanwhile a probe starts a small execution (no artifacts) every 100 ms, one at
# a time: printed are its latencies (POST …/execute answered, p50/p90/p99/max)
# and how many were answered other than 200 (a 503: the gateway's 2 s request
# timeout while the broker's turn was busy storing artifacts), and the same count
# for the EXECUTIONS submissions.
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
cleanup() { touch "$dir/stop"; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $dir" >&2 || rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
c=$(port); w=$(port); e=$(port); h=$(port)
cat > "$dir/agent.sh" <<AGENT
#!/bin/sh
[ "\$(cat)" = probe ] && { echo probed; exit 0; }
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
curl -sf -X POST "$url/workflows" -H 'Content-Type: application/json' -d '{"id":"probe",
    "name":"Probe","phases":[{"phase_id":"p","name":"P","order":1,
    "prompt_template":"probe"}]}' > /dev/null
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$broker/status"; }
before=$(rss)
peak=$before
probe() {
    while [ ! -e "$dir/stop" ]; do
        curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$url/workflows/probe/execute" \
            -H 'Content-Type: application/json' -d '{}' >> "$dir/probe.log" || true
        sleep 0.1
    done
}
probe &
pids+=($!)
start=$(date +%s.%N)
# A 503 still commits the execution (it timed out in the gateway, not in the
# broker): the submission is not repeated, and the wait below counts it.
for i in $(seq "$executions"); do
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$url/workflows/blob/execute" \
        -H 'Content-Type: application/json' -d '{}' >> "$dir/submit.log"
done
while :; do
    now=$(rss); [ "$now" -gt "$peak" ] && peak=$now
    left=$(sqlite3 -readonly "$dir/var/syn.db" \
        "SELECT count(*) FROM executions WHERE workflow_id = 'blob' AND status NOT IN ('completed','failed','cancelled')" \
        2>/dev/null || echo 1)
    [ "$left" = 0 ] && break
    sleep 0.05
done
took=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }")
touch "$dir/stop"
stored=$(sqlite3 -readonly "$dir/var/syn.db" "SELECT coalesce(sum(size), 0) FROM artifacts WHERE complete = 1")
completed=$(sqlite3 -readonly "$dir/var/syn.db" "SELECT count(*) FROM executions WHERE workflow_id = 'blob' AND status = 'completed'")
echo "artifacts: $executions executions x $mib MiB, $workers workers x $slots slots: $completed completed in ${took}s"
latencies() { # $1: a file of "code seconds" lines; $2: what they are
    sort -k2 -n "$1" | awk -v what="$2" '
        function at(q,  i) { i = int(NR * q + 0.5); if (i < 1) i = 1; return t[i] * 1000 }
        { t[NR] = $2; if ($1 != 200) bad++ }
        END { if (!NR) { print what ": none"; exit }
              printf "%s: %d, answered other than 200: %d; latency p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms\n",
                     what, NR, bad + 0, at(0.5), at(0.9), at(0.99), t[NR] * 1000 }'
}
latencies "$dir/submit.log" "submissions"
latencies "$dir/probe.log" "probe executes while they arrived"
awk -v b="$before" -v p="$peak" -v s="$stored" 'BEGIN {
    printf "broker RSS before %.1f MiB, peak %.1f MiB (+%.1f MiB) while %.1f MiB of artifacts arrived (peak growth / bytes stored = %.3f)\n",
           b / 1024, p / 1024, (p - b) / 1024, s / 1048576, (p - b) * 1024 / s }'
