#!/bin/bash
# Retention under a steady load (issue 18, docs/benchmarks.md "Retention"): one
# long W1 batch through synload on a fresh local stack whose broker keeps
# finished executions for 1 minute (--retain-seconds 60), sampling every second
# the database file, its WAL and the executions it holds. The file must level off
# once the first minute's executions start being deleted.
#
#   bench/retention.sh [EXECUTIONS]     (default 200000; make bench-retention)
#
# -> bench/results/retention/retention.dat (seconds, syn.db bytes, WAL bytes,
#    executions held, executions started, finished executions held) and
#    retention.png.
# synload checks every execution's outputs in the database after its batch: those
# retention already deleted count as "bad" there, which is this benchmark's point,
# so its verdict is ignored.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SYN_BIN_DIR:-$here/../build/bin}
executions=${1:-200000}
retain_seconds=${RETAIN_SECONDS:-60}
out=${SYN_BENCH_OUT:-$here/results/retention}
mkdir -p "$out"
dat="$out/retention.dat"
cat > "$out/sample.sh" <<SAMPLE
#!/bin/bash
# {pid}: the broker. Every second: elapsed s, syn.db and WAL bytes, executions
# held, highest execution number (started so far); stops on SIGINT.
pid=\$1
data=\$(tr '\\0' '\\n' < /proc/\$pid/cmdline | grep -A1 -- '^--data\$' | tail -1)
echo "# seconds db_bytes wal_bytes executions_held executions_started finished_held" > "$dat"
start=\$(date +%s.%N)
trap 'exit 0' INT TERM
while :; do
    now=\$(date +%s.%N)
    db=\$(stat -c %s "\$data/syn.db" 2>/dev/null || echo 0)
    wal=\$(stat -c %s "\$data/syn.db-wal" 2>/dev/null || echo 0)
    rows=\$(sqlite3 -readonly "\$data/syn.db" \\
        "SELECT count(*), coalesce(max(num), 0), (SELECT coalesce(sum(n), 0)
         FROM execution_counts WHERE status IN ('completed', 'failed', 'cancelled'))
         FROM executions" 2>/dev/null | tr '|' ' ')
    echo "\$(awk "BEGIN { printf \\"%.1f\\", \$now - \$start }") \$db \$wal \${rows:-0 0 0}" >> "$dat"
    sleep 1
done
SAMPLE
chmod +x "$out/sample.sh"
echo "retention: $executions executions, finished ones kept ${retain_seconds}s -> $dat" >&2
"$bin/synload" --workload w1 --runs 1 --executions "$executions" --warmup 0 \
    --timeout-s 36000 --track active --log-level warn \
    --broker-args "--retain-seconds $retain_seconds" \
    --profile-cmd "exec $out/sample.sh {pid}" > "$out/synload.txt" 2>&1 || true
tail -3 "$out/synload.txt" >&2 || true
(cd "$out" && gnuplot "$here/retention.gp")
awk 'NR > 1 { if ($2 > max) max = $2; last = $0 } END {
    split(last, f, " ");
    printf "samples: %d; largest syn.db %.1f MB; at the end %.1f MB (WAL %.1f MB), %d held of %d started\n",
           NR - 1, max / 1e6, f[2] / 1e6, f[3] / 1e6, f[4], f[5] }' "$dat" >&2
