#!/bin/sh
# bench/ab.sh BASE [HEAD]: an A/B of two commits on this machine, alternated in
# one run so that drift (other load, CPU frequency, the page cache) falls on
# both sides alike. `make bench-ab BASE=<rev> [HEAD=<rev>]` runs it.
#
#   A = BASE, B = HEAD (default: the current checkout, uncommitted changes included)
#
# 1. Builds A and B as RelWithDebInfo (only the programs and synload) from
#    temporary git worktrees into build dirs outside the source tree.
# 2. Runs synload from B's build against each side's programs (--bin-dir), in
#    the order A B B A A B B A ... (AB_ROUNDS rounds, one A and one B each), each
#    slot being one W1 run (`--workload w1 --runs 1`: 2,000 executions after 200
#    of warm-up, 16 submits in flight, 2 workers x 16 slots; then the idle
#    memory of every program 2 s after the batch) and one W2 run (default W2:
#    `--workload w2 --runs 1`, 4, 8, 16 and 64 slots, phases of 50 ms).
#    B's synload drives both sides because the load generator is not what is
#    compared, and its JSON changed with issue 14 (uss_* was private_*); the
#    broker's database schema it checks results against must be the same on
#    both sides (it says so when it is not: the runs fail).
# 3. Prints medians [min-max] per side, the ratio B/A of the medians and the
#    spread of the per-round ratios, the machine's load during the run, and
#    writes it all to bench/results/ab/ (raw JSON lines, summary.md).
#
# Time on the 2-core machine: ~20 s per build from scratch (the four programs
# only), then ~52 s per round (W1 ~6 s + W2 ~20 s per side): the default 10
# rounds keep the whole A/B near 10 minutes, under 12. Nothing else should run
# on the machine meanwhile.
#
#   AB_ROUNDS=10    rounds (each: one A slot and one B slot)
#   AB_W2_SLOTS=    W2's slot list (default: synload's, 4,8,16,64)
#   AB_DIR=DIR      keep the worktrees and builds there and reuse them (incremental)
#   AB_BUILD_ONLY=1 build and stop
#   AB_SYNLOAD_ARGS="..."  extra synload flags for every run (e.g. --prefetch -1)
set -eu

usage() {
    echo "usage: sh bench/ab.sh BASE [HEAD]   (see the head of the script)" >&2
    exit 2
}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
case $1 in -h | --help) usage ;; esac

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RES=$HERE/results/ab
ROUNDS=${AB_ROUNDS:-10}
W2_SLOTS=${AB_W2_SLOTS:-}
EXTRA=${AB_SYNLOAD_ARGS:-}
JOBS=$(nproc)

say() { printf '[ab %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 is needed for the summary"
BASE_REV=$(git -C "$ROOT" rev-parse --verify -q "$1^{commit}") || die "no commit $1"
if [ $# = 2 ]; then
    HEAD_REV=$(git -C "$ROOT" rev-parse --verify -q "$2^{commit}") || die "no commit $2"
    HEAD_LABEL=$(git -C "$ROOT" rev-parse --short "$HEAD_REV")
else
    HEAD_REV=""
    HEAD_LABEL="$(git -C "$ROOT" describe --always --dirty) (checkout)"
fi
BASE_LABEL=$(git -C "$ROOT" rev-parse --short "$BASE_REV")

if [ -n "${AB_DIR:-}" ]; then
    WORK=$AB_DIR
    mkdir -p "$WORK"
    KEEP=1
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/syn-ab.XXXXXX")
    KEEP=0
fi
WORK=$(cd "$WORK" && pwd)
case $WORK/ in "$ROOT"/*) die "AB_DIR must be outside the source tree" ;; esac

cleanup() {
    [ "$KEEP" = 1 ] && return 0
    for w in "$WORK"/src-a "$WORK"/src-b; do
        [ -d "$w" ] && git -C "$ROOT" worktree remove --force "$w" 2>/dev/null
    done
    git -C "$ROOT" worktree prune 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A side's sources: a detached worktree of REV (reused under AB_DIR), or the
# checkout itself for B without a HEAD argument.
sources() { # side rev -> prints the source dir
    if [ -z "$2" ]; then
        echo "$ROOT"
        return
    fi
    dir=$WORK/src-$1
    if [ -d "$dir" ]; then
        git -C "$dir" checkout -q --detach "$2" >&2
    else
        git -C "$ROOT" worktree add -q --detach "$dir" "$2" >&2
    fi
    echo "$dir"
}

build() { # side rev
    src=$(sources "$1" "$2")
    bld=$WORK/build-$1
    say "building $1 ($(git -C "$src" rev-parse --short HEAD)) in $bld"
    t0=$(date +%s)
    cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$WORK/cmake-$1.log" 2>&1 ||
        { cat "$WORK/cmake-$1.log" >&2; die "cmake failed for $1"; }
    cmake --build "$bld" -j "$JOBS" --target syn-broker syn-gateway syn-worker synload \
        >"$WORK/build-$1.log" 2>&1 || { tail -30 "$WORK/build-$1.log" >&2; die "build failed for $1"; }
    say "built $1 in $(($(date +%s) - t0)) s"
}

T_START=$(date +%s)
build a "$BASE_REV"
build b "$HEAD_REV"
[ "${AB_BUILD_ONLY:-0}" = 1 ] && { say "AB_BUILD_ONLY: built in $WORK (removed now unless AB_DIR)"; exit 0; }

SYNLOAD=$WORK/build-b/bin/synload
# shellcheck disable=SC2086 # no HEAD: against the checkout
if git -C "$ROOT" diff --quiet "$BASE_REV" ${HEAD_REV:-} -- bench/synload 2>/dev/null; then
    say "synload is the same on both sides; B's drives both"
else
    say "synload differs between the sides (flags or JSON); B's drives both"
fi

mkdir -p "$RES"
rm -f "$RES"/*.jsonl "$RES"/*.log "$RES"/summary.md "$RES"/meta.json
cpu_stat() { awk '/^cpu / {print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6, $9}' /proc/stat; }
STAT0=$(cpu_stat)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T_MEASURE=$(date +%s)
say "load average before measuring: $LOAD0 ($(nproc) cores)"

# One slot: W1 then W2 with one side's programs, appended to that side's files.
slot() { # side round
    bin=$WORK/build-$1/bin
    for wl in w1 w2; do
        args="--workload $wl --runs 1 --json --bin-dir $bin"
        [ "$wl" = w2 ] && [ -n "$W2_SLOTS" ] && args="$args --w2-slots $W2_SLOTS"
        # shellcheck disable=SC2086
        "$SYNLOAD" $args $EXTRA >"$RES/run.tmp" 2>>"$RES/synload-$1.log" ||
            { tail -20 "$RES/synload-$1.log" >&2; die "synload failed ($1, $wl, round $2)"; }
        python3 - "$1" "$2" "$RES/run.tmp" "$RES/$1-$wl.jsonl" <<'EOF'
import json, sys
side, rnd, src, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out, shown = open(dst, "a"), []
for line in open(src):
    if not line.strip():
        continue
    o = json.loads(line)
    o["ab_side"], o["ab_round"] = side, rnd
    out.write(json.dumps(o) + "\n")
    if o["workload"] == "w1":
        shown.append("%.0f exec/s, worker USS %.2f MiB" % (o["exec_per_s"], o.get("uss_worker_mib", 0)))
    else:
        shown.append("%d slots %.1f%%" % (o["slots"], o["pct_of_ideal"]))
print("  " + side.upper() + ": " + "; ".join(shown), file=sys.stderr)
EOF
    done
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
    if [ $((r % 2)) = 1 ]; then order="a b"; else order="b a"; fi
    say "round $r/$ROUNDS ($(echo "$order" | tr 'ab ' 'AB ')), $(($(date +%s) - T_MEASURE)) s in"
    for side in $order; do
        slot "$side" "$r"
    done
    r=$((r + 1))
done
rm -f "$RES/run.tmp"

STAT1=$(cpu_stat)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
T_END=$(date +%s)
cat >"$RES/meta.json" <<EOF
{"a": "$BASE_LABEL", "b": "$HEAD_LABEL", "rounds": $ROUNDS, "nproc": $(nproc),
 "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')",
 "loadavg_start": "$LOAD0", "loadavg_end": "$LOAD1", "stat0": "$STAT0", "stat1": "$STAT1",
 "build_s": $((T_MEASURE - T_START)), "measure_s": $((T_END - T_MEASURE)),
 "started": "$(date -u -d "@$T_MEASURE" +%Y-%m-%dT%H:%M:%SZ)", "extra": "$EXTRA",
 "synload": "B's ($HEAD_LABEL)"}
EOF

python3 - "$RES" <<'EOF' | tee "$RES/summary.md"
import json, os, statistics, sys
res = sys.argv[1]
meta = json.load(open(os.path.join(res, "meta.json")))

def load(name):
    p = os.path.join(res, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []

runs = {s: {"w1": load(s + "-w1.jsonl"), "w2": load(s + "-w2.jsonl")} for s in "ab"}

def mmm(v, fmt):
    v = [x for x in v if x is not None]
    if not v:
        return "-"
    return (fmt + " [" + fmt + "–" + fmt + "]").format(statistics.median(v), min(v), max(v))

rows = []
def row(label, sel, fmt, wl, key, lower_better=False):
    va = {o["ab_round"]: o.get(key) for o in runs["a"][wl] if sel(o)}
    vb = {o["ab_round"]: o.get(key) for o in runs["b"][wl] if sel(o)}
    a = [x for x in va.values() if x is not None]
    b = [x for x in vb.values() if x is not None]
    if not a or not b:
        return
    ma, mb = statistics.median(a), statistics.median(b)
    ratio = "{:.3f}".format(mb / ma) if ma else "-"
    # Per round: B over the A that ran next to it.
    pr = [vb[k] / va[k] for k in va if k in vb and va[k] and vb[k] is not None]
    spread = mmm(pr, "{:.2f}") if pr else "-"
    overlap = "yes" if max(min(a), min(b)) <= min(max(a), max(b)) else "no"
    rows.append((label, mmm(a, fmt), mmm(b, fmt), ratio, spread, overlap))

w1 = lambda o: True
row("W1 executions/s (16 in flight)", w1, "{:.0f}", "w1", "exec_per_s")
row("W1 latency p50 ms", w1, "{:.1f}", "w1", "p50_ms")
row("W1 latency p99 ms", w1, "{:.1f}", "w1", "p99_ms")
row("W1 CPU-s broker", w1, "{:.3f}", "w1", "cpu_broker_s")
row("W1 CPU-s gateway", w1, "{:.3f}", "w1", "cpu_gateway_s")
row("W1 CPU-s workers (2)", w1, "{:.3f}", "w1", "cpu_workers_s")
slots = sorted({o["slots"] for s in "ab" for o in runs[s]["w2"]})
for n in slots:
    sel = lambda o, n=n: o["slots"] == n
    ideal = next(o["ideal_exec_per_s"] for o in runs["a"]["w2"] if o["slots"] == n)
    row("W2 %d slots, %% of ideal %.1f/s" % (n, ideal), sel, "{:.1f}", "w2", "pct_of_ideal")
for prog in ("worker", "broker", "gateway"):
    for kind in ("uss", "pss", "rss"):
        row("idle %s %s MiB (2 s after W1)" % (prog, kind.upper()), w1, "{:.2f}", "w1",
            "%s_%s_mib" % (kind, prog))

s0 = [float(x) for x in meta["stat0"].split()]
s1 = [float(x) for x in meta["stat1"].split()]
tot = s1[0] - s0[0]
busy = 100 * (1 - (s1[1] - s0[1]) / tot) if tot else 0
steal = 100 * (s1[2] - s0[2]) / tot if tot else 0
loads = [o["loadavg_before"][0] for s in "ab" for w in ("w1", "w2") for o in runs[s][w]]

print("# A/B: A = %s, B = %s" % (meta["a"], meta["b"]))
print()
print("%d rounds (A B B A ...), started %s on %d cores (%s); builds %d s, measuring %d s."
      % (meta["rounds"], meta["started"], meta["nproc"], meta["cpu"], meta["build_s"], meta["measure_s"]))
print("Load average before/after: %s / %s; 1-min load average before each run: %s; "
      "CPU busy during the runs %.0f %% of both cores, steal %.1f %%. synload: %s%s."
      % (meta["loadavg_start"], meta["loadavg_end"], mmm(loads, "{:.2f}"), busy, steal,
         meta["synload"], (", extra flags " + meta["extra"]) if meta["extra"] else ""))
print()
print("Median [min–max] over the rounds; B/A = ratio of the medians; per round = B over the A")
print("run next to it, median [min–max]; overlap = whether the two ranges overlap.")
print()
print("| metric | A %s | B %s | B/A | per round | overlap |" % (meta["a"], meta["b"]))
print("| --- | --- | --- | --- | --- | --- |")
for r in rows:
    print("| " + " | ".join(r) + " |")
EOF
say "done: $RES/summary.md ($(($(date +%s) - T_START)) s in all)"
