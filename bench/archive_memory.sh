#!/bin/sh
# make bench-archive-memory (issue 24): the broker's memory with 1,000,000 finished
# executions. archive_query loads the archive (the same generator and rows as
# make bench-archive; its query times are printed first, the same run), then a
# real syn-broker and syn-gateway are started on it: the broker's RSS, PSS and
# USS (/proc/PID/smaps_rollup) once it serves, then again after
# bench/archive_http.py has sent every query of bench-archive (and the costs
# reports, which read every execution: the gateway waits up to 120 s for them)
# through HTTP, with their latencies.
#   Usage: sh bench/archive_memory.sh BUILD_DIR [EXECUTIONS]   (ARCHIVE=DIR: see below)
# Writes bench/results/archive-memory/summary.txt. Needs ~1.3 GB in /tmp.
set -eu
BUILD=$1
N=${2:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/results/archive-memory
mkdir -p "$OUT"
# ARCHIVE=DIR: use (and keep) the archive an earlier run left there (archive_query
# --dir DIR --keep), instead of loading a fresh one in a temp dir.
DIR=${ARCHIVE:-$(mktemp -d /tmp/syn-archmem-XXXXXX)}
bpid=""
gpid=""
cleanup() {
    [ -n "$gpid" ] && kill "$gpid" 2>/dev/null
    [ -n "$bpid" ] && kill "$bpid" 2>/dev/null
    wait 2>/dev/null
    if [ -n "${ARCHIVE:-}" ]; then rm -f "$DIR"/*.log; else rm -rf "$DIR"; fi
}
trap cleanup EXIT INT TERM
exec >"$OUT/summary.txt.part"
echo "started $(date -u +%FT%TZ); uptime: $(uptime)"
"$BUILD/bin/archive_query" --executions "$N" --dir "$DIR" --keep
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(port); P2=$(port); P3=$(port); P4=$(port)
"$BUILD/bin/syn-broker" --data "$DIR" --clients "tcp://127.0.0.1:$P1" --workers "tcp://127.0.0.1:$P2" \
    --events "tcp://127.0.0.1:$P3" --retain-days 0 --log-level warn 2>"$DIR/broker.log" &
bpid=$!
"$BUILD/bin/syn-gateway" --http "127.0.0.1:$P4" --broker "tcp://127.0.0.1:$P1" \
    --events "tcp://127.0.0.1:$P3" --request-timeout-ms 120000 --log-level warn 2>"$DIR/gateway.log" &
gpid=$!
i=0
until curl -sf "http://127.0.0.1:$P4/health" >/dev/null; do
    i=$((i + 1)); [ $i -lt 600 ] || { echo "the stack did not come up"; cat "$DIR"/*.log; exit 1; }
    sleep 0.1
done
mem() {
    awk -v what="$1" '/^Rss:/{r=$2} /^Pss:/{p=$2} /^Private_(Clean|Dirty):/{u+=$2}
        END{printf "broker memory %s: RSS %.1f MiB, PSS %.1f MiB, USS %.1f MiB\n", what, r/1024, p/1024, u/1024}' \
        "/proc/$bpid/smaps_rollup"
    grep -E '^VmHWM' "/proc/$bpid/status"
}
echo
echo "uptime before the broker's figures: $(uptime)"
mem "once serving (1,000,000 finished executions)"
python3 "$HERE/archive_http.py" "http://127.0.0.1:$P4" "$N"
mem "after the queries"
echo "finished $(date -u +%FT%TZ); uptime: $(uptime)"
exec >&2
mv "$OUT/summary.txt.part" "$OUT/summary.txt"
cat "$OUT/summary.txt"
