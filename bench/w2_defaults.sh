#!/bin/sh
# make bench-w2-defaults (issue 24): W2 at 16 and 64 slots, 640 executions each,
# with the workers' defaults (no --prefetch: the adaptive prefetch of
# worker/prefetch.h), RUNS times, each slot count also with --prefetch 0 (no
# prefetch: what the default was before) in the same run, then the peers' W2 at
# the same slot counts and batch size (bench/peers/driver.py, W2_ONLY=1).
# Writes bench/results/w2defaults/{syn.jsonl,peers/*.json,summary.md}; the
# machine's load average (uptime) goes beside every figure.
#   Usage: sh bench/w2_defaults.sh BUILD_DIR
#   RUNS=3, PEERS="bullmq celery" (PEERS="" for syn only), SLOTS=16,64, EXECUTIONS=640
set -eu
BUILD=$1
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/results/w2defaults
RUNS=${RUNS:-3}
SLOTS=${SLOTS:-16,64}
EXECUTIONS=${EXECUTIONS:-640}
PEERS=${PEERS-bullmq celery}
mkdir -p "$OUT"
: >"$OUT/syn.jsonl"
say() { printf '[w2-defaults %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Alternating, so that the load of the moment falls on both alike.
i=1
while [ "$i" -le "$RUNS" ]; do
    for mode in defaults none; do
        set -- --workload w2 --w2-slots "$SLOTS" --executions "$EXECUTIONS" --runs 1 --json
        [ "$mode" = none ] && set -- "$@" --worker-args "--prefetch 0"
        say "run $i, $mode: $(uptime)"
        load=$(cut -d' ' -f1-3 /proc/loadavg)
        "$BUILD/bin/synload" "$@" |
            python3 -c 'import json,sys
for line in sys.stdin:
    o = json.loads(line); o["mode"] = sys.argv[1]; o["uptime_load"] = sys.argv[2]
    print(json.dumps(o))' "$mode" "$load" >>"$OUT/syn.jsonl"
    done
    i=$((i + 1))
done

if [ -n "$PEERS" ]; then
    say "peers ($PEERS): $(uptime)"
    PEERS="$PEERS" REPS=$RUNS W2_ONLY=1 W2_SLOTS=$SLOTS W2_EXECUTIONS=$EXECUTIONS \
        sh "$HERE/peers.sh" "$BUILD/peers" "$OUT"
fi
python3 "$HERE/w2_defaults_report.py" "$OUT" >"$OUT/summary.md"
cat "$OUT/summary.md"
