#!/bin/sh
# make bench-w2-spread (issue 24): "long phases are not hoarded". W2 with long
# phases (30 s by default) on 4 workers of one slot each, with the defaults
# (adaptive prefetch), 8 executions of 3 phases (24 phases: 6 rounds of 4);
# then, from the broker's own database, how many phases each worker ran and
# the makespan against the ideal (6 rounds of one phase).
#   Usage: sh bench/w2_spread.sh BUILD_DIR [PHASE_MS]   (EXECUTIONS=8)
# Writes bench/results/w2spread/summary.md (with the load average at the start).
set -eu
BUILD=$1
PHASE_MS=${2:-30000}
EXECUTIONS=${EXECUTIONS:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/results/w2spread
mkdir -p "$OUT"
load=$(cut -d' ' -f1-3 /proc/loadavg)
"$BUILD/bin/synload" --workload w2 --w2-workers 4 --w2-slots 4 --phase-ms "$PHASE_MS" \
    --executions "$EXECUTIONS" --warmup 0 --runs 1 --json --keep \
    >"$OUT/run.json" 2>"$OUT/run.log"
dir=$(sed -n 's/^synload: kept //p' "$OUT/run.log" | tail -1)
db=$(ls "$dir"/var/*.db | head -1)
python3 - "$db" "$OUT/run.json" "$PHASE_MS" "$EXECUTIONS" "$load" <<'PY' >"$OUT/summary.md"
import json, sqlite3, sys, math
db, run, phase_ms, n, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
o = json.loads(open(run).read().splitlines()[-1])
c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
rows = c.execute("SELECT worker, count(*), sum(status = 'completed') FROM attempts "
                 "WHERE execution_id IN (SELECT id FROM executions WHERE id LIKE 'w2-%' OR 1) "
                 "GROUP BY worker ORDER BY worker").fetchall()
first, last = c.execute("SELECT min(started_at), max(completed_at) FROM attempts").fetchone()
ideal_s = math.ceil(3 * n / 4) * phase_ms / 1000
make_s = (last - first) / 1e6
print(f"W2, {n} executions x 3 phases of {phase_ms} ms, 4 workers x 1 slot, defaults; "
      f"load average at start {load}\n")
print("| worker | attempts | completed |\n| --- | --- | --- |")
for w, a, done in rows:
    print(f"| {w} | {a} | {done} |")
print(f"\nmakespan (first phase started -> last completed): {make_s:.1f} s; ideal "
      f"{ideal_s:.0f} s ({math.ceil(3 * n / 4)} rounds); {100 * ideal_s / make_s:.1f} % of ideal; "
      f"synload: {o['pct_of_ideal']:.1f} % of ideal (submit -> last completion)")
PY
rm -rf "$dir"
cat "$OUT/summary.md"
