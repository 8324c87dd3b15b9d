#!/bin/bash
# A thousand workers (issue 24, docs/benchmarks.md "A thousand workers"): synload's
# fleet workload at 10, 100, 300 and 1,000 simulated workers x 4 slots against one
# broker and gateway, then the chart.
#
#   bench/fleet.sh [WORKER COUNTS]     (default 10,100,300,1000; make bench-fleet)
#
# RUNS: runs per count (default 3; the .dat has the medians). A run whose
# results are wrong (an execution failed across the restart) is left out of the
# JSON and counted in <tag>.err; the chart is drawn from the others.
# SYN_BIN_DIR: the programs (default build/bin); FLEET_BIN_DIR: another build's
# broker and gateway (an A/B: FLEET_TAG names its files, default "fleet").
# -> bench/results/fleet/<tag>.json (one JSON object per worker count), <tag>.dat
#    and fleet.png (every .dat there, one line each).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SYN_BIN_DIR:-$here/../build/bin}
programs=${FLEET_BIN_DIR:-$bin}
tag=${FLEET_TAG:-fleet}
counts=${1:-10,100,300,1000}
runs=${RUNS:-3}
out=${SYN_BENCH_OUT:-$here/results/fleet}
mkdir -p "$out"
echo "fleet: $counts workers, programs in $programs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
status=0
"$bin/synload" --bin-dir "$programs" --workload fleet --fleet-workers "$counts" --runs "$runs" \
    --json --log-level warn > "$out/$tag.json" 2> "$out/$tag.err" || {
    grep FAILED "$out/$tag.err" >&2
    status=1
}
python3 - "$out/$tag.json" > "$out/$tag.dat" <<'PY'
import json, sys
import statistics
cols = ["dispatch_p50_ms", "dispatch_p99_ms", "idle_broker_cpu_pct", "restart_adopted_ms",
        "rss_broker_per_worker_kib", "uss_broker_per_worker_kib", "busy_pct", "load1",
        "commit_p99_ms", "restart_lost_by_adoption"]
print("# medians per worker count: workers runs " + " ".join(cols))
by = {}
for line in open(sys.argv[1]):
    o = json.loads(line)
    o["load1"] = o["loadavg_before"][0]
    by.setdefault(o["workers"], []).append(o)
for n in sorted(by):
    med = [statistics.median(o.get(c, -1) for o in by[n]) for c in cols]
    med[3] = med[3] / 1000 if med[3] >= 0 else -1  # restart in s
    print(n, len(by[n]), " ".join("%g" % m for m in med))
PY
(cd "$out" && gnuplot "$here/fleet.gp")
cat "$out/$tag.dat" >&2
exit $status
