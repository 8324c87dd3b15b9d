#!/bin/bash
# What the agent sandbox costs (issue 22), in one run on one host:
#   1. the start of an attempt without bwrap, with it, and with it and the
#      credential proxy (bench/sandbox_start.c:
#      `true` as the command agent, median and p99);
#   2. W2 through the command provider (bench/mock_agent.sh, which behaves as
#      the mock does) with --sandbox none, then with --sandbox bwrap.
#
#   bench/sandbox.sh [attempts] [w2 slots]       defaults: 200, 4
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${SYN_BIN_DIR:-$here/../build/bin}
attempts=${1:-200}
slots=${2:-4}
echo "== sandbox start, $attempts attempts each"
"$bin/sandbox_start" --attempts "$attempts"
for sandbox in none bwrap; do
  echo "== W2, $slots slots, command provider, --sandbox $sandbox"
  "$bin/synload" --workload w2 --runs 1 --w2-slots "$slots" --json \
    --worker-args "--provider command --command $here/mock_agent.sh --sandbox $sandbox" |
    python3 -c 'import json,sys
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("workload") == "w2":
        print(json.dumps({k: r.get(k) for k in ("slots", "exec_per_s", "ideal_exec_per_s", "pct_of_ideal")}))'
done
