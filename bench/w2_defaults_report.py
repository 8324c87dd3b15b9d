#!/usr/bin/python3
"""bench/w2_defaults.sh's summary: W2 % of ideal per slot count, syn with the
defaults and without prefetch, beside the peers of the same run, medians
[min-max] over the runs and per-run ratios (run i of syn / run i of the peer)."""
import glob
import json
import os
import statistics
import sys

out = sys.argv[1]
syn = [json.loads(line) for line in open(os.path.join(out, "syn.jsonl")) if line.strip()]
peers = {}
for path in sorted(glob.glob(os.path.join(out, "peers", "*.json"))):
    with open(path) as f:
        p = json.load(f)
    peers[p["peer"]] = p


def med(values):
    if not values:
        return "—"
    return f"{statistics.median(values):.1f} [{min(values):.1f}–{max(values):.1f}]"


def ratios(a, b):
    r = [x / y for x, y in zip(a, b) if y]
    return f"{statistics.median(r):.2f} [{min(r):.2f}–{max(r):.2f}]×" if r else "—"


slots = sorted({o["slots"] for o in syn})
print("| slots | syn, defaults: % of ideal | load (1/5/15 min) | syn, `--prefetch 0` | "
      + " | ".join(f"{n} % of ideal | defaults ÷ {n}" for n in peers) + " |")
print("| --- | --- | --- | --- |" + " --- | --- |" * len(peers))
for s in slots:
    d = [o["pct_of_ideal"] for o in syn if o["slots"] == s and o["mode"] == "defaults"]
    loads = [o["uptime_load"] for o in syn if o["slots"] == s and o["mode"] == "defaults"]
    n = [o["pct_of_ideal"] for o in syn if o["slots"] == s and o["mode"] == "none"]
    row = [str(s), med(d), "; ".join(loads), med(n)]
    for name, p in peers.items():
        pp = [100 * r["exec_per_s"] / r["ideal_exec_per_s"] for r in p["w2"] if r["slots"] == s]
        row += [med(pp) + f" (load {' '.join(p['host']['loadavg_start'])})", ratios(d, pp)]
    print("| " + " | ".join(row) + " |")
execs = sorted({o["executions"] for o in syn})
print(f"\nexecutions per run: {execs}; runs per row: {len(syn) // max(1, 2 * len(slots))}")
