#!/bin/bash
# A thousand workers (issue 24, docs/benchmarks.md "A thousand workers"): synload's
# fleet workload at 10, 100, 300 and 1,000 simulated workers x 4 slots against one
# broker and gateway, then the chart.
#
#   bench/fleet.sh [WORKER COUNTS]     (default 10,100,300,1000; make bench-fleet)
#
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
out=${SYN_BENCH_OUT:-$here/results/fleet}
mkdir -p "$out"
echo "fleet: $counts workers, programs in $programs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin/synload" --bin-dir "$programs" --workload fleet --fleet-workers "$counts" --runs 1 \
    --json --log-level warn > "$out/$tag.json" 2> "$out/$tag.err" || {
    tail -5 "$out/$tag.err" >&2
    exit 1
}
python3 - "$out/$tag.json" > "$out/$tag.dat" <<'PY'
import json, sys
print("# workers dispatch_p50_ms dispatch_p99_ms idle_broker_cpu_pct restart_adopted_s "
      "rss_broker_per_worker_kib uss_broker_per_worker_kib busy_pct load1")
for line in open(sys.argv[1]):
    o = json.loads(line)
    print(o["workers"], o["dispatch_p50_ms"], o["dispatch_p99_ms"], o["idle_broker_cpu_pct"],
          o.get("restart_adopted_ms", -1) / 1000, o["rss_broker_per_worker_kib"],
          o.get("uss_broker_per_worker_kib", -1), o["busy_pct"], o["loadavg_before"][0])
PY
(cd "$out" && gnuplot "$here/fleet.gp")
cat "$out/$tag.dat" >&2
