#!/bin/sh
# bench/w1.sh BUILD_DIR: W1 (2,000 three-phase no-op executions, 16 submits in
# flight) on syn with each store beside the peers, alternated in one run so that
# the machine's load falls on every side alike. `make bench-w1` runs it.
#
# Each round runs, in this order and each on a fresh stack:
#   syn, SQLite store      synload --workload w1 --runs 1 --json
#   syn, PostgreSQL store  the same with --store postgresql: synload makes a private
#                          durable cluster (initdb on a Unix socket, as nobody when
#                          root; fsync and synchronous_commit on, as shipped) and a
#                          fresh database per run. Left out, saying so, when
#                          PostgreSQL's server programs are not installed.
#   BullMQ                 bench/peers/driver.py with W1_ONLY=1 REPS=1: W1 one
#                          submit at a time, then 16 flow.add() in flight (pipelined)
#   Celery                 the same driver (its submit blocks: one at a time)
# with the 1-minute load average (`uptime`) before each run. Then the medians
# [min-max] per side and the per-round ratios to BullMQ pipelined and to Celery
# go to bench/results/w1/summary.md (raw lines in runs.jsonl).
#
#   W1_ROUNDS=3        rounds
#   W1_PEERS="bullmq celery"   peers to run (empty: none)
#   W1_STORES="sqlite postgresql"
#   W1_SYNLOAD_ARGS="..."      extra synload flags (e.g. --prefetch -1)
set -eu

BUILD=${1:?usage: sh bench/w1.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "$BUILD" && pwd)
RES=$HERE/results/w1
ROUNDS=${W1_ROUNDS:-3}
PEERS=${W1_PEERS-bullmq celery}
STORES=${W1_STORES:-sqlite postgresql}
EXTRA=${W1_SYNLOAD_ARGS:-}
STAGE=$BUILD/peers

say() { printf '[bench-w1 %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
load1() { cut -d' ' -f1 /proc/loadavg; }

if echo " $STORES " | grep -q " postgresql " &&
    ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${SYN_PG_BIN:-}" ]; then
    say "PostgreSQL is not installed (Debian's postgresql package; scripts/deps.sh installs it):"
    say "W1 on PostgreSQL is left out of this run"
    STORES=$(echo "$STORES" | sed 's/postgresql//')
fi

mkdir -p "$RES"
OUT=$RES/runs.jsonl
: >"$OUT"
if [ -n "$PEERS" ]; then
    PEERS="$PEERS" PEERS_STAGE_ONLY=1 sh "$HERE/peers.sh" "$STAGE" "$RES"
fi

say "start: $(uptime)"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for store in $STORES; do
        load=$(load1)
        say "round $round: syn on $store (load $load)"
        # shellcheck disable=SC2086 # EXTRA is words
        "$BUILD/bin/synload" --workload w1 --runs 1 --json --store "$store" $EXTRA 2>"$RES/synload.log" |
            grep '^{' | python3 -c 'import json, sys
for line in sys.stdin:
    o = json.loads(line)
    print(json.dumps({"side": "syn-" + sys.argv[1], "round": int(sys.argv[2]), "load1": float(sys.argv[3]),
                      "exec_per_s": o["exec_per_s"], "p50_ms": o.get("p50_ms"), "p99_ms": o.get("p99_ms"),
                      "cpu_broker_s": o.get("cpu_broker_s"), "cpu_gateway_s": o.get("cpu_gateway_s")}))' \
                "$store" "$round" "$load" >>"$OUT" || { say "synload failed:"; tail -20 "$RES/synload.log" >&2; exit 1; }
    done
    for peer in $PEERS; do
        load=$(load1)
        say "round $round: $peer (load $load)"
        W1_ONLY=1 REPS=1 /usr/bin/python3 "$STAGE/driver.py" "$peer" "$RES/$peer.json" 2>"$RES/$peer.log" ||
            { say "$peer failed:"; tail -20 "$RES/$peer.log" >&2; exit 1; }
        python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for key, side in (("w1", "-1"), ("w1_pipelined", "-pipelined")):
    for r in d[key]:
        print(json.dumps({"side": d["peer"] + side, "round": int(sys.argv[2]), "load1": float(sys.argv[3]),
                          "exec_per_s": r["exec_per_s"]}))' "$RES/$peer.json" "$round" "$load" >>"$OUT"
    done
    round=$((round + 1))
done
say "end: $(uptime)"

python3 - "$OUT" "$RES/summary.md" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
sides = []
for r in rows:
    if r["side"] not in sides:
        sides.append(r["side"])
by = {s: {r["round"]: r for r in rows if r["side"] == s} for s in sides}
def fmt(v): return f"{v:,.0f}" if v >= 100 else f"{v:.2f}"
def mm(vals): return f"{fmt(statistics.median(vals))} [{fmt(min(vals))}–{fmt(max(vals))}]"
refs = [s for s in ("bullmq-pipelined", "celery-1") if s in by]
out = ["| W1 side | executions/s, median [min–max] | load (1-min) before each run | "
       + " | ".join(f"÷ {s} per round" for s in refs) + " |",
       "| --- | --- | --- | " + " | ".join("---" for _ in refs) + " |"]
for s in sides:
    runs = by[s]
    cells = [s, mm([r["exec_per_s"] for r in runs.values()]),
             ", ".join(f'{r["load1"]:.1f}' for r in runs.values())]
    for ref in refs:
        ratios = [runs[k]["exec_per_s"] / by[ref][k]["exec_per_s"] for k in runs if k in by[ref]]
        cells.append(mm(ratios) + "×" if ratios and s != ref else "")
    out.append("| " + " | ".join(cells) + " |")
text = "\n".join(out) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
EOF
say "wrote $RES/summary.md"
