#!/bin/sh
# make bench: runs synload's workloads against fresh local stacks, profiles the
# broker under W1, and writes bench/results/ (JSON lines per workload, syn.json,
# report.md, PNG charts). Usage: sh bench/run.sh BUILD_DIR
#   BENCH_RUNS=3        runs per workload (medians, min-max)
#   BENCH_QUICK=1       one run each, shorter wrk, no 100k fill, no profile
#   BENCH_SKIP="fill profile scaling"   leave parts out
set -eu

BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RES=$HERE/results
SYNLOAD=$ROOT/$BUILD/bin/synload
RUNS=${BENCH_RUNS:-3}
SKIP=${BENCH_SKIP:-}
WRK_SECONDS=10
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    RUNS=1
    WRK_SECONDS=3
    SKIP="$SKIP fill profile"
fi

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
skipped() { case " $SKIP " in *" $1 "*) return 0 ;; esac; return 1; }

# Debian packages the harness needs, installed only when missing.
need=""
command -v wrk >/dev/null 2>&1 || need="$need wrk"
command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox"
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
command -v perf >/dev/null 2>&1 || need="$need linux-perf"
if [ -n "$need" ]; then
    say "installing:$need"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
[ -x "$SYNLOAD" ] || { echo "bench: $SYNLOAD is missing (make build first)" >&2; exit 1; }

mkdir -p "$RES"
rm -rf "$RES"/syn-*.jsonl "$RES"/latency "$RES"/callgrind* "$RES"/perf* "$RES"/profile-*.jsonl

# The machine and the versions, for the report.
{
    printf '{"started":"%s",' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf '"loadavg_start":"%s",' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '"nproc":%s,' "$(nproc)"
    printf '"cpu":"%s",' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    printf '"mem_mib":%s,' "$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)"
    printf '"os":"%s",' "$(. /etc/os-release && echo "$PRETTY_NAME") / Debian $(cat /etc/debian_version 2>/dev/null)"
    printf '"kernel":"%s",' "$(uname -r)"
    printf '"compiler":"%s",' "$(cc --version | head -1)"
    printf '"build_type":"%s",' "$(grep -m1 CMAKE_BUILD_TYPE "$ROOT/$BUILD/CMakeCache.txt" | cut -d= -f2)"
    printf '"syn":"%s",' "$("$ROOT/$BUILD/bin/syn-broker" --version 2>&1 | head -1)"
    for lib in libzmq libczmq sqlite3 libmicrohttpd jansson msgpack libcurl; do
        printf '"%s":"%s",' "$lib" "$(pkg-config --modversion $lib 2>/dev/null)"
    done
    printf '"wrk":"%s",' "$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
    printf '"runs":%s}\n' "$RUNS"
} >"$RES/meta.json"

# Each workload: one JSON object per run into its own file; the commands go
# into commands.txt for the report.
: >"$RES/commands.txt"
bench() {
    name=$1
    shift
    say "$name: synload $*"
    echo "synload $*  > bench/results/syn-$name.jsonl" >>"$RES/commands.txt"
    mkdir -p "$RES/latency/$name"
    "$SYNLOAD" --json --latency-dir "$RES/latency/$name" "$@" >"$RES/syn-$name.jsonl"
}

bench w1w3 --workload w1,w3 --runs "$RUNS"
bench w1seq --workload w1 --runs "$RUNS" --inflight 1
bench w2 --workload w2 --runs "$RUNS" --w2-slots 4,8,16,64
bench w2x64 --workload w2 --runs "$RUNS" --w2-slots 64 --executions 640
# The same with the workers' --prefetch = their slots (phases held beyond the
# slots start the moment one frees); the report shows both configurations.
bench w1pf --workload w1 --runs "$RUNS" --prefetch -1
bench w2pf --workload w2 --runs "$RUNS" --w2-slots 4,8,16,64 --prefetch -1
bench w2x64pf --workload w2 --runs "$RUNS" --w2-slots 64 --executions 640 --prefetch -1
bench w3curl --workload w3 --runs 1 --client curl
bench wrk --workload wrk --runs "$RUNS" --wrk-seconds "$WRK_SECONDS"
bench deadworker --workload deadworker --runs "$RUNS"
skipped scaling || bench scaling --workload scaling --runs 1 --scale-workers 1,2,4,8
skipped fill || bench fill --workload fill --runs 1

# Where the broker's time goes under W1: callgrind (instructions by function,
# inclusive; the VM has no hardware counters, so `perf stat -e instructions`
# does not work), and perf with the software cpu-clock event and syscall
# tracepoints at native speed (self time by library, commits, writes).
if ! skipped profile; then
    say "profile: broker under callgrind during a 500-execution W1"
    echo "synload --workload w1 --runs 1 --executions 500 --warmup 50 --broker-prefix 'valgrind --tool=callgrind --callgrind-out-file=bench/results/callgrind.broker'" >>"$RES/commands.txt"
    "$SYNLOAD" --json --workload w1 --runs 1 --executions 500 --warmup 50 --timeout-s 900 \
        --broker-prefix "valgrind --tool=callgrind --callgrind-out-file=$RES/callgrind.broker" \
        >"$RES/profile-callgrind.jsonl"
    callgrind_annotate --inclusive=no "$RES/callgrind.broker" 2>/dev/null | head -60 >"$RES/callgrind-self.txt" || true
    callgrind_annotate --inclusive=yes "$RES/callgrind.broker" 2>/dev/null | head -90 >"$RES/callgrind-inclusive.txt" || true
    if perf stat -e cpu-clock true >/dev/null 2>&1; then
        events=task-clock,context-switches,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync
        events=$events,syscalls:sys_enter_pwrite64,syscalls:sys_enter_pread64,syscalls:sys_enter_write
        events=$events,syscalls:sys_enter_poll,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom
        say "profile: perf stat (syscalls) of the broker during W1"
        echo "synload --workload w1 --runs 1 --profile-cmd 'exec perf stat -e $events -o bench/results/perf-stat.txt -p {pid}'" >>"$RES/commands.txt"
        "$SYNLOAD" --json --workload w1 --runs 1 \
            --profile-cmd "exec perf stat -e $events -o $RES/perf-stat.txt -p {pid}" >"$RES/profile-perfstat.jsonl" || true
        say "profile: perf record (cpu-clock) of the broker during W1"
        echo "synload --workload w1 --runs 1 --profile-cmd 'exec perf record -e cpu-clock -F 4000 -g -o bench/results/perf.data -p {pid}'" >>"$RES/commands.txt"
        "$SYNLOAD" --json --workload w1 --runs 1 \
            --profile-cmd "exec perf record -q -e cpu-clock -F 4000 -g -o $RES/perf.data -p {pid}" >"$RES/profile-perf.jsonl" || true
        perf report -i "$RES/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null \
            | grep -v '^#' | grep -v '^$' | head -20 >"$RES/perf-by-library.txt" || true
        perf report -i "$RES/perf.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null \
            | grep -v '^#' | grep -v '^$' | head -50 >"$RES/perf-self.txt" || true
    else
        say "profile: perf does not work here, callgrind only"
    fi
fi

printf '{"finished":"%s","loadavg_end":"%s"}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" >"$RES/meta-end.json"

say "report and charts"
/usr/bin/python3 "$HERE/report.py" "$RES"
(cd "$RES" && gnuplot "$HERE/plots.gp")
say "done: $RES/report.md, $RES/*.png"
